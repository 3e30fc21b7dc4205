//! The logical model of the OpenStack Networking API v2.0 as Neutrino keeps it:
//! resource types, request validation and the error vocabulary clients key on.
//! No I/O lives here: the engine, the store and the HTTP layer build on it.

pub mod auth;
pub mod body;
pub mod error;
pub mod query;
pub mod resources;
pub mod time;

pub use auth::{AuthContext, Role};
pub use error::{ApiError, ApiResult, ErrorKind};
pub use resources::*;
