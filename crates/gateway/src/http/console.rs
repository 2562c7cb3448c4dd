//! The web console at `/console`: pages built into the binary (no Node.js
//! to build or run it) over the admin API. Logging in with the admin key
//! sets a session cookie (`HttpOnly`, `SameSite=Strict`, one hour, renewed
//! by each visit to the console page) that is a MAC under the admin key over
//! the session generation, so every replica accepts it, changing the key
//! ends every session, and signing out (a new generation, kept in the
//! store and read by every replica within 250 ms) ends them too; a change
//! made with the cookie must carry the
//! session's CSRF token (`x-csrf-token`), which only the console's own page
//! can read. Pages are served with a strict Content-Security-Policy (no
//! inline script), `X-Frame-Options: DENY` and `no-store`.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::Digest;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::routing::state::Handle;

const COOKIE: &str = "gw_console";
const SESSION_MS: i64 = 3600 * 1000;

/// The session generation when there is no store (one replica).
static LOCAL_GENERATION: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// The current session generation.
pub(super) fn generation(state: &crate::routing::state::AppState) -> i64 {
    match state.access.stored() {
        Some(ks) => ks.console_generation(),
        None => LOCAL_GENERATION.load(std::sync::atomic::Ordering::Relaxed),
    }
}

const LOGIN: &str = include_str!("console/login.html");
const INDEX: &str = include_str!("console/index.html");
const APP_JS: &str = include_str!("console/app.js");
const APP_CSS: &str = include_str!("console/app.css");

/// Registers the console's routes.
pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/console", web::get().to(page))
        .route("/console/", web::get().to(page))
        .route("/console/login", web::post().to(login))
        .route("/console/logout", web::post().to(logout))
        .route("/console/app.js", web::get().to(asset))
        .route("/console/app.css", web::get().to(asset));
}

/// HMAC-SHA256 (RFC 2104).
fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&sha2::Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let (mut ipad, mut opad) = ([0x36u8; 64], [0x5cu8; 64]);
    for i in 0..64 {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let inner = sha2::Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    sha2::Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn now_ms() -> i64 {
    i64::try_from(crate::ids::now_ms()).unwrap_or(i64::MAX)
}

/// A new session's cookie value: `expiry.generation.nonce.mac`.
fn new_session(admin_key: &str, generation: i64) -> Result<String, ApiError> {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    let body = format!("{}.{generation}.{}", now_ms() + SESSION_MS, hex(&nonce));
    let mac = hex(&hmac(
        admin_key.as_bytes(),
        format!("console|{body}").as_bytes(),
    ));
    Ok(format!("{body}.{mac}"))
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(name)?.strip_prefix('='))
}

/// The session cookie of `req`, if it is valid under `admin_key` and of
/// the current `generation`.
pub(super) fn session(req: &HttpRequest, admin_key: &str, generation: i64) -> Option<String> {
    let value = cookie(req, COOKIE)?;
    let (body, mac) = value.rsplit_once('.')?;
    let mut parts = body.split('.');
    let exp: i64 = parts.next()?.parse().ok()?;
    let born: i64 = parts.next()?.parse().ok()?;
    let want = hex(&hmac(
        admin_key.as_bytes(),
        format!("console|{body}").as_bytes(),
    ));
    (bool::from(want.as_bytes().ct_eq(mac.as_bytes())) && exp > now_ms() && born == generation)
        .then(|| value.to_owned())
}

/// The `Set-Cookie` value of a new session.
fn session_cookie(req: &HttpRequest, key: &str, generation: i64) -> Result<String, ApiError> {
    let secure = if req.connection_info().scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    Ok(format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        new_session(key, generation)?,
        SESSION_MS / 1000
    ))
}

/// The CSRF token of a session.
pub(super) fn csrf(admin_key: &str, session: &str) -> String {
    hex(&hmac(
        admin_key.as_bytes(),
        format!("csrf|{session}").as_bytes(),
    ))
}

/// Whether a session's change carries its CSRF token.
pub(super) fn csrf_ok(req: &HttpRequest, admin_key: &str, session: &str) -> bool {
    let sent = req
        .headers()
        .get("x-csrf-token")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    bool::from(csrf(admin_key, session).as_bytes().ct_eq(sent))
}

fn admin_key(handle: &Handle) -> Option<String> {
    handle
        .state()
        .config
        .admin
        .key
        .as_ref()
        .map(|k| k.0.clone())
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(body)
}

fn login_page(status: StatusCode, message: &str) -> HttpResponse {
    html(status, LOGIN.replace("{{message}}", message))
}

/// `GET /console`: the app for a session, else the login form.
async fn page(req: HttpRequest, handle: web::Data<Handle>) -> HttpResponse {
    let Some(key) = admin_key(&handle) else {
        return html(
            StatusCode::NOT_FOUND,
            "<!doctype html><title>Console</title><p>The console needs an admin key ([admin] key or ADMIN_KEY).</p>".into(),
        );
    };
    let generation = generation(&handle.state());
    if session(&req, &key, generation).is_none() {
        return login_page(StatusCode::OK, "");
    }
    // A visit renews the session (one hour from now): an idle one ends.
    let Ok(cookie) = session_cookie(&req, &key, generation) else {
        return login_page(StatusCode::OK, "");
    };
    let fresh = cookie
        .split(';')
        .next()
        .and_then(|c| c.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    let mut resp = html(
        StatusCode::OK,
        INDEX.replace("{{csrf}}", &csrf(&key, &fresh)),
    );
    if let Ok(v) = header::HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[derive(serde::Deserialize)]
struct LoginForm {
    key: String,
}

/// `POST /console/login`: the admin key checked, the session cookie set.
async fn login(
    req: HttpRequest,
    form: web::Form<LoginForm>,
    handle: web::Data<Handle>,
) -> Result<HttpResponse, ApiError> {
    let state = handle.state();
    let (Some(admin), Some(key)) = (&state.admin, admin_key(&handle)) else {
        return Err(ApiError::no_route("POST", req.path()));
    };
    if admin
        .verify_header(Some(&format!("Bearer {}", form.key.trim())))
        .await
        .is_err()
    {
        tracing::warn!("console login refused");
        return Ok(login_page(
            StatusCode::UNAUTHORIZED,
            "That is not the admin key.",
        ));
    }
    let cookie = session_cookie(&req, &key, generation(&state))?;
    tracing::info!("console login");
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/console"))
        .insert_header((header::SET_COOKIE, cookie))
        .finish())
}

/// `POST /console/logout`: every session ended (a new generation, on every
/// replica) and the cookie cleared. Only a valid session can do it (a
/// cross-site form cannot send the `SameSite=Strict` cookie).
async fn logout(req: HttpRequest, handle: web::Data<Handle>) -> HttpResponse {
    let state = handle.state();
    if let Some(key) = admin_key(&handle)
        && session(&req, &key, generation(&state)).is_some()
    {
        match state.access.stored() {
            Some(ks) => {
                if let Err(e) = ks.end_console_sessions().await {
                    tracing::error!(error = %e, "console sessions could not be ended");
                }
            }
            None => {
                LOCAL_GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        tracing::warn!("console logout: every session ended");
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/console"))
        .insert_header((
            header::SET_COOKIE,
            format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        ))
        .finish()
}

/// The script and style sheet.
async fn asset(req: HttpRequest) -> HttpResponse {
    let (body, ctype) = if req.path().ends_with(".js") {
        (APP_JS, "text/javascript; charset=utf-8")
    } else {
        (APP_CSS, "text/css; charset=utf-8")
    };
    HttpResponse::Ok()
        .content_type(ctype)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
