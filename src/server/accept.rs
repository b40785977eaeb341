//! Taking the next connection on either port: accept errors (out of file descriptors and the
//! like) back off instead of spinning; the connection registry admits it under the port's
//! cap (refused when every open connection is busy with a request, or an idle one evicted to
//! make room); the port's metrics say so.

use crate::server::conn_clock::ConnClock;
use crate::server::connections::{Admission, Admitted, Connections, Port};
use crate::server::state::App;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// An admitted connection with its clock and its place in the registry.
pub struct Accepted {
    pub tcp: TcpStream,
    pub peer: SocketAddr,
    pub clock: Arc<ConnClock>,
    pub admission: Admission,
}

/// The next admitted connection, or `None` once `stop` resolves.
pub async fn next(
    listener: &TcpListener,
    stop: &mut Pin<&mut (impl Future<Output = ()> + ?Sized)>,
    connections: &Arc<Connections>,
    app: &App,
    port: Port,
) -> Option<Accepted> {
    loop {
        let (tcp, peer) = tokio::select! {
            biased;
            () = stop.as_mut() => return None,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, port = port.as_str(), "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let clock = ConnClock::new();
        let Some((admission, how)) = connections.admit(Arc::clone(&clock)) else {
            app.metrics.limits.connection_closed(port, "refused");
            tracing::debug!(%peer, port = port.as_str(), max = connections.max(), "connection cap reached; refused");
            continue;
        };
        if how == Admitted::Evicted {
            app.metrics.limits.connection_closed(port, "evicted");
        }
        app.metrics
            .limits
            .connections_open(port, connections.count());
        return Some(Accepted {
            tcp,
            peer,
            clock,
            admission,
        });
    }
}
