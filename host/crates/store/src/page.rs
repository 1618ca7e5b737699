//! Pagination math shared by both backends.

use crate::models::{Page, Paged};

/// Rows per page when the client does not say.
pub const DEFAULT_PER_PAGE: u32 = 10;
/// The largest page a client may ask for.
pub const MAX_PER_PAGE: u32 = 100;

impl Default for Page {
    fn default() -> Self {
        Self {
            page: 0,
            per_page: DEFAULT_PER_PAGE,
        }
    }
}

impl Page {
    /// Page `page` (0-based) of `per_page` rows, normalized.
    pub fn new(page: u32, per_page: u32) -> Self {
        Self { page, per_page }.normalized()
    }

    /// `per_page` 0 becomes the default, above the maximum the maximum.
    pub fn normalized(self) -> Self {
        let per_page = match self.per_page {
            0 => DEFAULT_PER_PAGE,
            n => n.min(MAX_PER_PAGE),
        };
        Self {
            page: self.page,
            per_page,
        }
    }

    /// SQL `LIMIT`.
    pub fn limit(self) -> i64 {
        i64::from(self.normalized().per_page)
    }

    /// SQL `OFFSET`.
    pub fn offset(self) -> i64 {
        let p = self.normalized();
        i64::from(p.page) * i64::from(p.per_page)
    }

    /// Wraps one page of rows out of `total`.
    pub fn wrap<T>(self, items: Vec<T>, total: i64) -> Paged<T> {
        let p = self.normalized();
        Paged {
            has_more: self.offset() + (items.len() as i64) < total,
            items,
            total,
            page: p.page,
            per_page: p.per_page,
        }
    }
}

impl<T> Paged<T> {
    /// The same page with every row converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paged<U> {
        Paged {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            page: self.page,
            per_page: self.per_page,
            has_more: self.has_more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_page_is_defaulted_and_capped() {
        assert_eq!(Page::new(0, 0).per_page, 10);
        assert_eq!(Page::new(0, 1000).per_page, 100);
        assert_eq!(Page::new(3, 20).offset(), 60);
    }

    #[test]
    fn has_more_counts_rows_before_and_on_the_page() {
        let p = Page::new(1, 10);
        assert!(p.wrap(vec![0; 10], 25).has_more);
        assert!(!p.wrap(vec![0; 10], 20).has_more);
        assert!(!Page::new(2, 10).wrap(vec![0; 5], 25).has_more);
    }
}
