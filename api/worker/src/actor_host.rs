//! `ActorHost`: the worker's actix system, on a thread of its own, where the supervised
//! `ProxyActor` and every `VmActor` live. The worker's gRPC service runs on tokio and reaches
//! them through their `Addr`s (a mailbox send works from any runtime); long runtime work is
//! handed back to the worker's tokio runtime by the actors themselves, so this thread only
//! orders commands. It must never run sandbox work on its own thread or outlive the worker:
//! dropping the last handle stops the system.

use actix::prelude::*;

/// Handle on the worker's actor system.
#[derive(Debug)]
pub(crate) struct ActorHost {
    system: System,
    arbiter: ArbiterHandle,
}

impl ActorHost {
    /// Starts the system thread.
    pub(crate) fn start() -> std::io::Result<Self> {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("worker-actors".into())
            .spawn(move || {
                let system = System::new();
                system.block_on(async move {
                    let _ = sender.send((System::current(), Arbiter::current()));
                });
                let _ = system.run();
            })?;
        let (system, arbiter) = receiver
            .recv()
            .map_err(|_| std::io::Error::other("the worker actor system did not start"))?;
        Ok(Self { system, arbiter })
    }

    /// Starts `make()` under a supervisor on the host's thread.
    pub(crate) fn start_supervised<A>(&self, make: impl FnOnce() -> A + Send + 'static) -> Addr<A>
    where
        A: Actor<Context = Context<A>> + Supervised,
    {
        Supervisor::start_in_arbiter(&self.arbiter, move |_| make())
    }
}

impl Drop for ActorHost {
    fn drop(&mut self) {
        self.system.stop();
    }
}
