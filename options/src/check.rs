//! Check mode: a job's command line parsed, its configs resolved and its options and inputs
//! checked as the command itself checks them, with nothing written and no slow work done (no
//! tokenizer trained, no data prepared, no weights loaded, no named corpus fetched). The
//! dashboard runs each job so before it queues it, and answers a refusal at once.

/// The environment variable that asks for check mode (`1`): the command exits 0 once its
/// options and inputs pass, or 2 with the one-line error it would have stopped with.
pub const CHECK_ONLY_VAR: &str = "PRIMER_CHECK_ONLY";

/// Whether this process only checks its command ([`CHECK_ONLY_VAR`] is `1`).
pub fn check_only() -> bool {
    std::env::var_os(CHECK_ONLY_VAR).is_some_and(|value| value == "1")
}
