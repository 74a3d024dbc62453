//! Test helpers: a tiny executor for the async core (its stores never suspend).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Drive a future that completes without waiting on I/O (in-memory stores).
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("future did not complete: the in-memory store must never suspend");
}
