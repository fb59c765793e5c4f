//! The production sink: the exchange's bank through the engine. `Engine::apply_source_batch`
//! validates the page, applies it with its checkpoint in one store transaction, and brings the
//! indexes up to date before it returns, so the page is matchable at once.

use std::sync::Arc;

use safeguard_engine::Engine;
use safeguard_store::{ExchangeCheckpoint, SourceBatch, SourceEntry, SourceRemoval};

use crate::sink::{Batch, ExchangeSink, Held, Outcome};
use crate::{Error, Result};

/// Writes an exchange into one bank of an [`Engine`]. The source recorded with every value is
/// `exchange:<NAME>`.
#[derive(Debug, Clone)]
pub struct EngineSink {
    engine: Arc<Engine>,
    bank: String,
}

impl EngineSink {
    /// A sink filling `bank` (which must exist).
    pub fn new(engine: Arc<Engine>, bank: impl Into<String>) -> EngineSink {
        EngineSink {
            engine,
            bank: bank.into(),
        }
    }

    /// The provenance source name of an exchange.
    pub fn source(exchange: &str) -> String {
        format!("exchange:{exchange}")
    }
}

fn sink_err(e: impl std::fmt::Display) -> Error {
    Error::Sink(e.to_string())
}

impl ExchangeSink for EngineSink {
    fn checkpoint(&self, exchange: &str) -> Result<Option<String>> {
        Ok(self
            .engine
            .exchange_state(exchange)
            .map_err(sink_err)?
            .and_then(|s| s.checkpoint))
    }

    fn held(&self, exchange: &str) -> Result<Vec<Held>> {
        let source = Self::source(exchange);
        let bank = self.engine.bank(&self.bank).map_err(sink_err)?;
        let mut out = Vec::new();
        self.engine
            .store()
            .scan_bank(bank.id, &mut |sig, provs| {
                for p in provs {
                    if p.source == source && p.withdrawn_at.is_none() {
                        out.push(Held {
                            signal_type: sig.signal_type.clone(),
                            value: sig.value.clone(),
                            source_id: p.source_id.clone(),
                        });
                    }
                }
            })
            .map_err(sink_err)?;
        Ok(out)
    }

    fn apply(&self, exchange: &str, batch: &Batch<'_>) -> Result<Outcome> {
        let source = Self::source(exchange);
        let upserts: Vec<SourceEntry> = batch
            .upserts
            .iter()
            .map(|u| SourceEntry {
                signal_type: u.signal_type.clone(),
                value: u.value.clone(),
                source_id: u.source_id.clone(),
                classification: u.classification.clone(),
                metadata: u.metadata.clone(),
            })
            .collect();
        let removals: Vec<SourceRemoval> = batch
            .removals
            .iter()
            .map(|r| SourceRemoval {
                signal_type: r.signal_type.clone(),
                value: r.value.clone(),
            })
            .collect();
        let o = self
            .engine
            .apply_source_batch(
                &self.bank,
                &SourceBatch {
                    source: &source,
                    seen_at: batch.seen_at,
                    upserts: &upserts,
                    removals: &removals,
                    checkpoint: Some(ExchangeCheckpoint {
                        exchange,
                        checkpoint: batch.checkpoint,
                    }),
                },
            )
            .map_err(sink_err)?;
        Ok(Outcome {
            added: o.added,
            refreshed: o.refreshed,
            removed: o.removed,
            unchanged: o.unchanged,
        })
    }

    fn record_error(&self, exchange: &str, message: &str, at: i64) -> Result<()> {
        self.engine
            .record_exchange_error(exchange, &self.bank, message, at)
            .map_err(sink_err)
    }
}
