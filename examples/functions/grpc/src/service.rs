//! The `zeroscale.echo.v1.Echo` service.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::proto::echo_server::Echo;
use crate::proto::{ChatMessage, ChatReply, SayReply, SayRequest};

/// The echo service: answers `Say` once and every `Chat` message as it arrives.
#[derive(Debug, Clone)]
pub struct EchoService {
    pod: Arc<str>,
}

impl EchoService {
    /// A service whose replies name `pod`.
    pub fn new(pod: &str) -> Self {
        Self { pod: pod.into() }
    }
}

/// The server's half of a `Chat` stream.
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<ChatReply, Status>> + Send>>;

#[tonic::async_trait]
impl Echo for EchoService {
    async fn say(&self, request: Request<SayRequest>) -> Result<Response<SayReply>, Status> {
        let message = request.into_inner().message;
        Ok(Response::new(SayReply {
            message,
            pod: self.pod.to_string(),
        }))
    }

    type ChatStream = ChatStream;

    async fn chat(
        &self,
        request: Request<Streaming<ChatMessage>>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        let pod = self.pod.clone();
        let mut count = 0;
        // One reply per message, produced when the message arrives (not when the client's half
        // ends), so a client can wait for each answer before it sends the next message. A broken
        // inbound stream ends the call with its status.
        let replies = request.into_inner().map(move |message| {
            let message = message?;
            count += 1;
            Ok(ChatReply {
                seq: message.seq,
                text: message.text,
                count,
                pod: pod.to_string(),
            })
        });
        Ok(Response::new(Box::pin(replies)))
    }
}
