//! Accounts and sessions (docs/protocol.md §2.3, §2.4).

use super::*;

impl Client {
    /// `POST /api/v1/register` (a device label, no invite).
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        device: Option<&str>,
    ) -> Result<AuthResponse> {
        self.register_with(&credentials(username, password, device))
            .await
    }

    /// `POST /api/v1/register` with every field (an invite code).
    pub async fn register_with(&self, credentials: &Credentials) -> Result<AuthResponse> {
        self.api(Method::POST, &["register"])
            .json(credentials)
            .json_answer(201)
            .await
    }

    /// `POST /api/v1/login`.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        device: Option<&str>,
    ) -> Result<AuthResponse> {
        self.login_with(&credentials(username, password, device))
            .await
    }

    /// `POST /api/v1/login` with every field.
    pub async fn login_with(&self, credentials: &Credentials) -> Result<AuthResponse> {
        self.api(Method::POST, &["login"])
            .json(credentials)
            .json_answer(200)
            .await
    }

    /// Revokes this session.
    pub async fn logout(&self) -> Result<()> {
        self.api(Method::POST, &["logout"]).empty_answer().await
    }

    /// Revokes every session of the account, this one included.
    pub async fn logout_all(&self) -> Result<()> {
        self.api(Method::POST, &["logout", "all"])
            .empty_answer()
            .await
    }

    /// Changes the password (`current` must be right); the server revokes every other session.
    pub async fn change_password(&self, current: &str, new: &str) -> Result<()> {
        let body = ChangePassword {
            current: current.to_owned(),
            new: new.to_owned(),
        };
        self.api(Method::POST, &["password"])
            .json(&body)
            .empty_answer()
            .await
    }

    pub async fn me(&self) -> Result<User> {
        self.api(Method::GET, &["me"]).json_answer(200).await
    }

    /// Changes the profile (display name).
    pub async fn update_profile(&self, update: &UpdateProfile) -> Result<User> {
        self.api(Method::PATCH, &["me"])
            .json(update)
            .json_answer(200)
            .await
    }

    /// The account's live sessions, oldest first.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>> {
        self.api(Method::GET, &["sessions"]).json_answer(200).await
    }

    /// Revokes one session of the account.
    pub async fn delete_session(&self, id: &str) -> Result<()> {
        self.api(Method::DELETE, &["sessions", id])
            .empty_answer()
            .await
    }

    /// Users by exact name or name prefix.
    pub async fn search_users(&self, q: &str) -> Result<Vec<UserPublic>> {
        self.api(Method::GET, &["users"])
            .query(&[("q", q)])
            .json_answer(200)
            .await
    }

    pub async fn get_user(&self, user: UserId) -> Result<UserPublic> {
        self.api(Method::GET, &["users", &user.to_string()])
            .json_answer(200)
            .await
    }
}

/// Credentials without an invite.
fn credentials(username: &str, password: &str, device: Option<&str>) -> Credentials {
    Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
        device: device.map(str::to_owned),
        invite: None,
    }
}
