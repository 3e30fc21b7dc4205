//! Keystone mode: user tokens are validated against an external Keystone v3,
//! the way keystonemiddleware's auth_token does for the real Neutron.
//!
//! Neutrino logs in as a service user, asks Keystone about each new user
//! token (`GET /v3/auth/tokens`) and caches the answer until the token
//! expires. A token revoked in Keystone therefore stays usable here until its
//! cached expiry; the cache is per process.

mod cache;
mod client;
mod config;
mod response;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, StatusCode};
use neutrino_model::time::now_unix;
use neutrino_model::{ApiError, AuthContext};
use tokio::sync::Mutex;

pub use config::KeystoneConfig;

use crate::error::IdentityError;
use cache::{Cached, TokenCache};
use client::{KeystoneClient, KeystoneError, Reply};
use response::Subject;

/// Longest user token sent to Keystone (Fernet tokens are about 200 bytes).
const MAX_TOKEN_LEN: usize = 8192;
/// How long "Keystone does not know this token" is remembered: long enough
/// to absorb a client retrying a bad token in a loop, short enough not to matter.
const NEGATIVE_CACHE_SECS: i64 = 10;
/// Renew the service token this long before it expires (or at half its
/// lifetime, if that is shorter), so validations never race its expiry.
const RENEW_MARGIN_SECS: i64 = 120;
/// After failing to get a service token, fail requests fast for this long
/// instead of making each wait for its own timeout.
const RETRY_AFTER_FAILURE_SECS: i64 = 2;

/// Validates user tokens with an external Keystone.
pub struct KeystoneValidator {
    config: KeystoneConfig,
    /// Keystone's v3 root without a trailing slash.
    base_url: String,
    client: KeystoneClient,
    service_token: Mutex<ServiceTokenState>,
    cache: TokenCache,
}

impl std::fmt::Debug for KeystoneValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeystoneValidator")
            .field("base_url", &self.base_url)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Neutrino's own token, and the last failure to get one.
#[derive(Default)]
struct ServiceTokenState {
    current: Option<ServiceToken>,
    failed: Option<(i64, KeystoneError)>,
}

struct ServiceToken {
    id: HeaderValue,
    /// Unix seconds from which a fresh token is fetched.
    renew_at: i64,
}

/// The result of asking Keystone about a user token.
enum Validation {
    Valid {
        context: AuthContext,
        expires_at: i64,
    },
    /// Not usable; `remember` when Keystone's answer was definitive.
    Invalid { remember: bool },
}

impl KeystoneValidator {
    /// Checks the config; no request is made until the first token arrives.
    pub fn new(config: KeystoneConfig) -> Result<KeystoneValidator, IdentityError> {
        let base_url = config.validated_base_url()?;
        let timeout = Duration::from_secs(config.timeout_secs.max(1));
        Ok(KeystoneValidator {
            base_url,
            client: KeystoneClient::new(timeout),
            service_token: Mutex::new(ServiceTokenState::default()),
            cache: TokenCache::new(config.cache_max_entries),
            config,
        })
    }

    /// Authenticates a Neutron API request's `X-Auth-Token`: 401 for tokens
    /// Keystone rejects, 503 when Keystone cannot be asked.
    pub async fn authenticate(&self, token: &str) -> Result<AuthContext, ApiError> {
        let token = token.trim();
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(ApiError::unauthorized());
        }
        let now = now_unix();
        let key = TokenCache::key(token);
        match self.cache.get(&key, now) {
            Some(Cached::Valid(context)) => return Ok(context),
            Some(Cached::Invalid) => return Err(ApiError::unauthorized()),
            None => {}
        }
        match self.validate(token).await {
            Ok(Validation::Valid {
                context,
                expires_at,
            }) => {
                self.cache
                    .insert(key, Cached::Valid(context.clone()), expires_at, now);
                Ok(context)
            }
            Ok(Validation::Invalid { remember }) => {
                if remember {
                    self.cache
                        .insert(key, Cached::Invalid, now + NEGATIVE_CACHE_SECS, now);
                }
                Err(ApiError::unauthorized())
            }
            Err(err) => {
                tracing::warn!(error = %err, keystone = %self.base_url, "cannot validate token");
                Err(ApiError::unavailable(
                    "The identity service is temporarily unavailable; try again later.",
                ))
            }
        }
    }

    /// Asks Keystone about `token`, renewing the service token once if
    /// Keystone no longer accepts it.
    async fn validate(&self, token: &str) -> Result<Validation, KeystoneError> {
        let Ok(subject) = HeaderValue::from_str(token) else {
            return Ok(Validation::Invalid { remember: false });
        };
        let mut renewed = false;
        loop {
            let service = self.service_token().await?;
            let request = Request::builder()
                .method(Method::GET)
                .uri(format!("{}/auth/tokens?nocatalog", self.base_url))
                .header("x-auth-token", service.clone())
                .header("x-subject-token", subject.clone())
                .body(Full::default())
                .map_err(|e| KeystoneError::Request(e.to_string()))?;
            let reply = self.client.send(request).await?;
            match reply.status {
                StatusCode::OK => return Ok(self.read_subject(&reply)),
                StatusCode::NOT_FOUND => return Ok(Validation::Invalid { remember: true }),
                // Our token was revoked or expired early: get a new one, once.
                StatusCode::UNAUTHORIZED if !renewed => {
                    self.forget_service_token(&service).await;
                    renewed = true;
                }
                // Keystone rejects even a fresh service token for this
                // subject; refuse it, but do not remember the answer.
                StatusCode::UNAUTHORIZED => return Ok(Validation::Invalid { remember: false }),
                other => return Err(KeystoneError::UnexpectedStatus(other.as_u16())),
            }
        }
    }

    fn read_subject(&self, reply: &Reply) -> Validation {
        match response::subject(&reply.body) {
            Ok(Subject::Valid {
                context,
                expires_at,
            }) if expires_at > now_unix() => Validation::Valid {
                context,
                expires_at,
            },
            Ok(Subject::Valid { .. }) | Ok(Subject::NotProjectScoped) => {
                Validation::Invalid { remember: true }
            }
            Err(err) => {
                tracing::warn!(error = %err, "unreadable token validation response");
                Validation::Invalid { remember: false }
            }
        }
    }

    /// The current service token, fetched or renewed if needed. The lock is
    /// held while fetching so concurrent requests share one login.
    async fn service_token(&self) -> Result<HeaderValue, KeystoneError> {
        let mut state = self.service_token.lock().await;
        let now = now_unix();
        if let Some(token) = &state.current
            && now < token.renew_at
        {
            return Ok(token.id.clone());
        }
        if let Some((failed_at, err)) = &state.failed
            && now - failed_at < RETRY_AFTER_FAILURE_SECS
        {
            return Err(KeystoneError::Backoff(err.to_string()));
        }
        match self.fetch_service_token(now).await {
            Ok(token) => {
                let id = token.id.clone();
                state.current = Some(token);
                state.failed = None;
                Ok(id)
            }
            Err(err) => {
                state.current = None;
                state.failed = Some((now, err.clone()));
                Err(err)
            }
        }
    }

    /// Drops `rejected` unless another request already replaced it.
    async fn forget_service_token(&self, rejected: &HeaderValue) {
        let mut state = self.service_token.lock().await;
        if state.current.as_ref().is_some_and(|t| t.id == *rejected) {
            state.current = None;
        }
    }

    /// Logs in as the service user (`POST /v3/auth/tokens`, project scope).
    async fn fetch_service_token(&self, now: i64) -> Result<ServiceToken, KeystoneError> {
        let c = &self.config;
        let body = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": c.username,
                "domain": {"name": c.user_domain_name},
                "password": c.password,
            }}},
            "scope": {"project": {"name": c.project_name, "domain": {"name": c.project_domain_name}}},
        }});
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/auth/tokens?nocatalog", self.base_url))
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| KeystoneError::Request(e.to_string()))?;
        let reply = self.client.send(request).await?;
        match reply.status {
            StatusCode::CREATED | StatusCode::OK => {}
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(KeystoneError::ServiceAuthRejected(reply.status.as_u16()));
            }
            other => return Err(KeystoneError::UnexpectedStatus(other.as_u16())),
        }
        let id = reply
            .headers
            .get("x-subject-token")
            .cloned()
            .ok_or_else(|| KeystoneError::BadResponse("no X-Subject-Token header".into()))?;
        let expires_at = response::issued_expiry(&reply.body)?;
        let lifetime = expires_at - now;
        if lifetime <= 0 {
            return Err(KeystoneError::BadResponse(
                "the service token is already expired".into(),
            ));
        }
        tracing::debug!(keystone = %self.base_url, lifetime, "obtained service token");
        Ok(ServiceToken {
            id,
            renew_at: expires_at - RENEW_MARGIN_SECS.min(lifetime / 2),
        })
    }
}
