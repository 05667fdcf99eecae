//! Audit mode: every connection and request is decided as under
//! REGISTRY_ONLY, and what the registry would refuse is let go to where the
//! client dialled, as ALLOW_ANY sends it, with the refusal kept for the
//! audit line, the metrics and `/suggest`. Pure, like `decide.rs`.

use super::{
    ConnectionFacts, DenyReason, DnsKnowledge, EgressPolicy, Target, Verdict,
    decide::{AllowReason, decide_with},
    registry::MatchedEntry,
};

/// Whether the registry's refusals are carried out or only reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Enforcement {
    /// Refused as the policy says.
    #[default]
    Enforce,
    /// Decided as under REGISTRY_ONLY; a refusal is allowed and reported.
    Audit,
}

/// A refusal audit mode let go: what enforcing would have said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WouldDeny {
    pub reason: DenyReason,
    pub matched: Option<MatchedEntry>,
}

/// [`super::decide`] under `enforcement`. Audited, a denial becomes an
/// allow to the dialled address (the target ALLOW_ANY gives), with no
/// matched entry, so no DestinationRule of a near miss applies, and the
/// refusal is returned beside it.
pub fn decide_enforced(
    facts: &ConnectionFacts<'_>,
    policy: &EgressPolicy,
    dns: &dyn DnsKnowledge,
    enforcement: Enforcement,
) -> (Verdict, Option<WouldDeny>) {
    if enforcement == Enforcement::Enforce {
        return (super::decide(facts, policy, dns), None);
    }
    match decide_with(facts, policy, dns, true) {
        Verdict::Deny { reason, matched } => {
            let allow = Verdict::Allow { target: Target::Original(facts.orig_dst), matched: None, reason: AllowReason::AllowAny, subset: None };
            (allow, Some(WouldDeny { reason, matched }))
        }
        verdict => (verdict, None),
    }
}
