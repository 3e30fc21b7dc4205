//! `/v2.0/instance-metadata/{device_id}`: Neutrino's admin-only extension
//! holding what the builtin metadata service cannot learn from ports (the
//! user data, public keys, name, availability zone and properties Nova
//! would keep). A PUT replaces the whole document; limits are Nova's. The
//! document names its project: only that project's ports with the device id
//! are told it (as Nova answers 404 when X-Tenant-ID is not the instance's),
//! so a port given another's device id learns nothing.

use std::collections::BTreeMap;

use base64::Engine as _;
use neutrino_model::time::format_utc;
use neutrino_model::{ApiError, ApiResult, AuthContext, InstanceMetadata};
use serde_json::{Value, json};

use crate::{Engine, policy};

/// Nova's limit on `user_data`: 65535 characters of base64.
pub const MAX_USER_DATA: usize = 65535;
/// Nova's limits on server metadata, names and keys.
const MAX_NAME: usize = 255;
const MAX_ITEMS: usize = 128;
const MAX_KEY_BYTES: usize = 16 * 1024;

const RULE_GET: &str = "rule:get_instance_metadata";
const RULE_PUT: &str = "rule:update_instance_metadata";
const RULE_DELETE: &str = "rule:delete_instance_metadata";

fn not_found(device_id: &str) -> ApiError {
    ApiError::not_found(
        "InstanceMetadataNotFound",
        format!("Instance metadata for device {device_id} could not be found."),
    )
}

pub fn view(m: &InstanceMetadata) -> Value {
    json!({
        "device_id": m.device_id,
        "project_id": m.project_id,
        "name": m.name,
        "availability_zone": m.availability_zone,
        "user_data": m.user_data,
        "public_keys": m.public_keys,
        "meta": m.meta,
        "created_at": format_utc(m.created_at),
        "updated_at": format_utc(m.updated_at),
    })
}

pub fn list(engine: &Engine, ctx: &AuthContext) -> ApiResult<Value> {
    policy::require_admin(ctx, RULE_GET)?;
    let state = engine.snapshot();
    let items: Vec<Value> = state.instance_metadata.values().map(|m| view(m)).collect();
    Ok(json!({ "instance_metadata": items }))
}

pub fn show(engine: &Engine, ctx: &AuthContext, device_id: &str) -> ApiResult<Value> {
    policy::require_admin(ctx, RULE_GET)?;
    let state = engine.snapshot();
    let m = state
        .instance_metadata
        .get(device_id)
        .ok_or_else(|| not_found(device_id))?;
    Ok(json!({ "instance_metadata": view(m) }))
}

/// Creates or replaces a device's metadata.
pub async fn put(
    engine: &Engine,
    ctx: &AuthContext,
    device_id: String,
    body: Value,
) -> ApiResult<Value> {
    policy::require_admin(ctx, RULE_PUT)?;
    let mut m = parse(&device_id, body)?;
    let saved = engine
        .write(move |txn| {
            let created = txn
                .state
                .instance_metadata
                .get(&m.device_id)
                .map_or(txn.now, |old| old.created_at);
            m.created_at = created;
            m.updated_at = txn.now;
            txn.put_instance_metadata(m.clone());
            Ok(m)
        })
        .await?;
    Ok(json!({ "instance_metadata": view(&saved) }))
}

pub async fn delete(engine: &Engine, ctx: &AuthContext, device_id: String) -> ApiResult<()> {
    policy::require_admin(ctx, RULE_DELETE)?;
    engine
        .write(move |txn| {
            if !txn.state.instance_metadata.contains_key(&device_id) {
                return Err(not_found(&device_id));
            }
            txn.delete_instance_metadata(&device_id);
            Ok(())
        })
        .await
}

/// The body's document, every field checked.
pub fn parse(device_id: &str, body: Value) -> ApiResult<InstanceMetadata> {
    if device_id.is_empty() || device_id.len() > MAX_NAME {
        return Err(ApiError::invalid_attr(
            "device_id",
            "must be 1 to 255 characters",
        ));
    }
    let Some(Value::Object(obj)) = body.get("instance_metadata").cloned() else {
        return Err(ApiError::bad_request(
            "Unable to find 'instance_metadata' in request body",
        ));
    };
    let mut m = InstanceMetadata {
        device_id: device_id.to_string(),
        ..Default::default()
    };
    for (k, v) in obj {
        match k.as_str() {
            "project_id" => m.project_id = short_string(&k, &v)?,
            "name" => m.name = short_string(&k, &v)?,
            "availability_zone" => m.availability_zone = short_string(&k, &v)?,
            "user_data" => m.user_data = user_data(&v)?,
            "public_keys" => m.public_keys = string_map(&k, &v, MAX_KEY_BYTES)?,
            "meta" => m.meta = string_map(&k, &v, MAX_NAME)?,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Unrecognized attribute(s) '{k}'"
                )));
            }
        }
    }
    if m.project_id.is_empty() {
        return Err(ApiError::bad_request(
            "project_id is required: the instance's project, whose ports alone are told this metadata",
        ));
    }
    Ok(m)
}

fn short_string(attr: &str, v: &Value) -> ApiResult<String> {
    match v {
        Value::String(s) if s.len() <= MAX_NAME => Ok(s.clone()),
        Value::String(_) => Err(ApiError::invalid_attr(
            attr,
            format!("longer than {MAX_NAME} characters"),
        )),
        other => Err(ApiError::invalid_attr(
            attr,
            format!("'{other}' is not a valid string"),
        )),
    }
}

fn user_data(v: &Value) -> ApiResult<Option<String>> {
    let s = match v {
        Value::Null => return Ok(None),
        Value::String(s) => s,
        other => {
            return Err(ApiError::invalid_attr(
                "user_data",
                format!("'{other}' is not a valid string"),
            ));
        }
    };
    if s.len() > MAX_USER_DATA {
        return Err(ApiError::invalid_attr(
            "user_data",
            format!(
                "{} characters of base64 exceed the limit of {MAX_USER_DATA}",
                s.len()
            ),
        ));
    }
    if base64::engine::general_purpose::STANDARD.decode(s).is_err() {
        return Err(ApiError::invalid_attr("user_data", "not valid base64"));
    }
    Ok(Some(s.clone()))
}

fn string_map(attr: &str, v: &Value, max_value: usize) -> ApiResult<BTreeMap<String, String>> {
    let Value::Object(obj) = v else {
        return Err(ApiError::invalid_attr(
            attr,
            format!("'{v}' is not a dictionary"),
        ));
    };
    if obj.len() > MAX_ITEMS {
        return Err(ApiError::invalid_attr(
            attr,
            format!("more than {MAX_ITEMS} items"),
        ));
    }
    let mut out = BTreeMap::new();
    for (k, val) in obj {
        let Value::String(s) = val else {
            return Err(ApiError::invalid_attr(
                attr,
                format!("the value of '{k}' is not a string"),
            ));
        };
        if k.is_empty() || k.len() > MAX_NAME || s.len() > max_value {
            return Err(ApiError::invalid_attr(
                attr,
                format!("'{k}' or its value is empty or too long"),
            ));
        }
        out.insert(k.clone(), s.clone());
    }
    Ok(out)
}
