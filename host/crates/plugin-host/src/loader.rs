//! Guarded loading for servers: [`PluginHost::load`] compiles behind a
//! process-wide semaphore with a time limit, off the async threads, and
//! concurrent loads of the same bytes share one compile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use sha2::{Digest, Sha256};

use crate::error::LoadError;
use crate::host::PluginHost;
use crate::plugin::Plugin;

/// A load in progress, awaited by every caller with the same bytes.
type Flight = Shared<BoxFuture<'static, Result<Arc<Plugin>, LoadError>>>;

/// Loads in progress by component digest.
#[derive(Default)]
pub(crate) struct InFlight {
    loads: Mutex<HashMap<String, Flight>>,
}

impl PluginHost {
    /// Loads a component like [`PluginHost::load_bytes`], guarded for use
    /// by a server:
    ///
    /// * at most `HostConfig::max_concurrent_compiles` loads run at once
    ///   (process-wide); the others wait;
    /// * the load runs on tokio's blocking pool, so async workers keep
    ///   serving other requests while it compiles;
    /// * a load that has not finished within `HostConfig::compile_timeout`
    ///   (waiting included) fails with [`LoadError::CompileTimeout`]; its
    ///   compile keeps its slot until it ends, so timed-out compiles cannot
    ///   pile up;
    /// * concurrent loads of the same bytes share one load, and it runs to
    ///   completion even if the caller that started it goes away.
    ///
    /// Must be called inside a tokio runtime.
    pub async fn load(&self, bytes: Vec<u8>) -> Result<Arc<Plugin>, LoadError> {
        let limit = self.inner.config.max_component_bytes;
        if bytes.len() > limit {
            return Err(LoadError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        let digest = hex::encode(Sha256::digest(&bytes));
        let flight = {
            let mut loads = self.inner.in_flight.loads.lock().expect("in-flight lock");
            loads
                .entry(digest.clone())
                .or_insert_with(|| self.start_flight(digest, bytes))
                .clone()
        };
        flight.await
    }

    /// Spawns the guarded load of `bytes`; it removes itself from the
    /// in-flight map when done.
    fn start_flight(&self, digest: String, bytes: Vec<u8>) -> Flight {
        let host = self.clone();
        let task = tokio::spawn(async move {
            let timeout = host.inner.config.compile_timeout;
            let guarded = async {
                let permit = host
                    .inner
                    .compile_slots
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| LoadError::Engine("the plugin host is shutting down".into()))?;
                let loader = host.clone();
                tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    loader.load_bytes(&bytes)
                })
                .await
                .map_err(|e| LoadError::Engine(format!("the compile task failed: {e}")))?
            };
            let result = match tokio::time::timeout(timeout, guarded).await {
                Ok(result) => result,
                Err(_) => Err(LoadError::CompileTimeout { limit: timeout }),
            };
            host.inner
                .in_flight
                .loads
                .lock()
                .expect("in-flight lock")
                .remove(&digest);
            result
        });
        async move {
            task.await
                .unwrap_or_else(|e| Err(LoadError::Engine(format!("the load task failed: {e}"))))
        }
        .boxed()
        .shared()
    }
}
