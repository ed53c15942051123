//! Administration (docs/protocol.md §2.8), for admins only.

use super::*;

impl Client {
    /// One page of accounts, by ascending id.
    pub async fn admin_users(&self, query: &AdminUsersQuery) -> Result<Vec<AdminUser>> {
        self.api(Method::GET, &["admin", "users"])
            .query(query)
            .json_answer(200)
            .await
    }

    /// Creates an account, whatever the registration mode.
    pub async fn create_user(&self, user: &CreateUser) -> Result<AdminUser> {
        self.api(Method::POST, &["admin", "users"])
            .json(user)
            .json_answer(201)
            .await
    }

    /// Grants or revokes admin, disables or enables an account.
    pub async fn update_user(&self, user: UserId, update: &UpdateUser) -> Result<AdminUser> {
        self.api(Method::PATCH, &["admin", "users", &user.to_string()])
            .json(update)
            .json_answer(200)
            .await
    }

    /// Sets a new password for `user` (all their sessions are revoked).
    pub async fn reset_password(&self, user: UserId, password: &str) -> Result<()> {
        let body = ResetPassword {
            password: password.to_owned(),
        };
        self.api(
            Method::PUT,
            &["admin", "users", &user.to_string(), "password"],
        )
        .json(&body)
        .empty_answer()
        .await
    }

    /// A registration invite code (shown once).
    pub async fn create_invite(&self, invite: &NewInviteCode) -> Result<InviteCode> {
        self.api(Method::POST, &["admin", "invites"])
            .json(invite)
            .json_answer(201)
            .await
    }
}
