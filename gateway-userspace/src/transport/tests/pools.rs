//! The node's pools: a reload revokes the kept connections of every open
//! connection's pool (not only one's), and a closed connection's pool is
//! forgotten.

use std::sync::{Arc, atomic::Ordering};

use super::{
    bounded,
    http_pool::{exchange_under, server},
};
use crate::{
    test_support::active_config,
    transport::{http_pool::Grant, pools::Pools},
};

/// Let go under generation 1; a newer configuration allows it only when
/// `later` says so.
fn grant(later: bool) -> Grant {
    Grant { generation: 1, stands: Arc::new(move |_, _| later) }
}

#[tokio::test]
async fn a_reload_closes_what_it_no_longer_allows_in_every_connections_pool() {
    bounded(async {
        let (addr, accepted) = server("hello", false).await;
        let pools = Arc::new(Pools::default());
        let (allowed, revoked, other) = (pools.open(), pools.open(), pools.open());
        exchange_under(&allowed, addr, true, grant(true)).await;
        exchange_under(&revoked, addr, true, grant(false)).await;
        exchange_under(&other, addr, true, grant(false)).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 3, "one upstream connection per pool");

        // The same generation revokes nothing.
        pools.revoke(&active_config("", 1));
        for pool in [&allowed, &revoked, &other] {
            exchange_under(pool, addr, true, grant(false)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3, "each kept connection was reused");

        // Generation 2: the two pools whose last request no longer stands lose their connection.
        exchange_under(&allowed, addr, true, grant(true)).await;
        pools.revoke(&active_config("", 2));
        for pool in [&allowed, &revoked, &other] {
            exchange_under(pool, addr, true, grant(true)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 5, "two pools dialled again, the allowed one reused its connection");
    })
    .await;
}

#[tokio::test]
async fn a_closed_connections_pool_is_forgotten() {
    let pools = Arc::new(Pools::default());
    let (one, two) = (pools.open(), pools.open());
    assert_eq!(pools.open_count(), 2);
    drop(one);
    assert_eq!(pools.open_count(), 1);
    pools.revoke(&active_config("", 2));
    drop(two);
    assert_eq!(pools.open_count(), 0);
}
