//! A throwaway PostgreSQL server for tests (implemented by the storage work).
