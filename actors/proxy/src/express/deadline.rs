//! The head deadline of one client connection: one timer for the connection's whole life,
//! moved forward for each request, instead of a timer made, registered in the runtime's wheel
//! and cancelled for every read of every request head (about a thousand instructions per
//! keep-alive request in the profile). Moving a registered timer later costs one atomic update;
//! the wheel sees the new deadline only when the old one comes round. It must never let a read
//! run past the deadline it was given.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use tokio::time::{Instant, Sleep};

/// A reusable deadline for the reads of one connection.
#[derive(Debug)]
pub(super) struct HeadDeadline {
    sleep: Pin<Box<Sleep>>,
}

impl HeadDeadline {
    pub(super) fn new(at: Instant) -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep_until(at)),
        }
    }

    /// Runs `work` until it finishes (`Some`) or `at` passes first (`None`).
    pub(super) async fn within<F: Future>(&mut self, at: Instant, work: F) -> Option<F::Output> {
        if self.sleep.deadline() != at {
            self.sleep.as_mut().reset(at);
        }
        let mut work = std::pin::pin!(work);
        std::future::poll_fn(|context| {
            if let Poll::Ready(output) = work.as_mut().poll(context) {
                return Poll::Ready(Some(output));
            }
            self.sleep.as_mut().poll(context).map(|()| None)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// `within` on work that never finishes, under an outer bound: a deadline that failed to
    /// fire makes the test fail (`Err`) instead of hang.
    async fn never_finishing(deadline: &mut HeadDeadline, at: Instant) -> Result<Option<()>, ()> {
        let bounded = tokio::time::timeout(
            Duration::from_secs(600),
            deadline.within(at, std::future::pending::<()>()),
        );
        bounded.await.map_err(|_| ())
    }

    #[tokio::test(start_paused = true)]
    async fn each_read_gets_its_own_deadline_however_often_the_timer_is_moved() {
        let start = Instant::now();
        let mut deadline = HeadDeadline::new(start + Duration::from_secs(30));
        // Work that finishes in time, ten times, each time with a later deadline.
        for round in 1..=10u64 {
            let at = Instant::now() + Duration::from_secs(30);
            let done = deadline
                .within(at, tokio::time::sleep(Duration::from_secs(round)))
                .await;
            assert_eq!(done, Some(()), "round {round} finished in time");
        }
        // Work that never finishes is cut exactly at its deadline, also after the timer fired.
        for _ in 0..2 {
            let at = Instant::now() + Duration::from_secs(30);
            let cut = never_finishing(&mut deadline, at).await;
            assert_eq!(cut, Ok(None));
            assert_eq!(
                Instant::now(),
                at,
                "cut at the deadline, not before or after"
            );
        }
        // An earlier deadline than the one set before is honoured too.
        let at = Instant::now() + Duration::from_secs(5);
        deadline
            .within(Instant::now() + Duration::from_secs(60), async {})
            .await;
        assert_eq!(never_finishing(&mut deadline, at).await, Ok(None));
        assert_eq!(Instant::now(), at);
    }
}
