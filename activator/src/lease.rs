//! What a request holds while it waits for a pod ([`Ticket`]) and while it is forwarded ([`Lease`]);
//! they live with the function state they give places back to ([`crate::function::lease`]).

pub use crate::function::lease::{Admission, Lease, Outcome, Ticket};
