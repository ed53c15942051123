//! Moderation from the app, through the IPC dispatch the UI uses (`Backend::execute`), against
//! a real server: a room owner bans and unbans a member, and the banned member's app drops the
//! room and says who banned them; a user blocks and unblocks another, and the blocked user's
//! app gets the server's `blocked` refusals (no new DM, their message in the old one fails).

mod common;

use common::*;
use protocol::ipc::{AppEvent, Command, MessageStatus, RoomView};
use protocol::rest::{Room, UserRef, Visibility};
use protocol::{ErrorCode, RoomId, UserId};
use serde::de::DeserializeOwned;

/// Runs one IPC command as the UI would and decodes its result.
async fn run<T: DeserializeOwned>(backend: &chat_desktop::Backend, command: Command) -> T {
    let what = format!("{command:?}");
    let value = within(&what, backend.execute(command))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    serde_json::from_value(value).unwrap_or_else(|e| panic!("{what}: bad result: {e}"))
}

/// Runs one IPC command that must be refused; the server's code.
async fn refused(backend: &chat_desktop::Backend, command: Command) -> Option<ErrorCode> {
    let what = format!("{command:?}");
    match within(&what, backend.execute(command)).await {
        Ok(v) => panic!("{what} succeeded: {v}"),
        Err(e) => e.server_code(),
    }
}

async fn room_ids(backend: &chat_desktop::Backend) -> Vec<RoomId> {
    let rooms: Vec<RoomView> = run(backend, Command::Rooms).await;
    rooms.into_iter().map(|r| r.room.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_bans_and_unbans_and_the_banned_member_is_told() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let (owner_home, member_home) = (Home::new(), Home::new());
    let (owner, _owner_ui, owner_user) = signed_up(&owner_home, &server, "owner").await;
    let (member, mut member_ui, member_user) = signed_up(&member_home, &server, "member").await;
    let room: Room = run(
        &owner,
        Command::CreateRoom {
            name: "town square".into(),
            visibility: Visibility::Public,
        },
    )
    .await;
    let _: Room = run(&member, Command::JoinRoom { room: room.id }).await;
    assert!(room_ids(&member).await.contains(&room.id));

    // A member cannot ban (not the owner).
    let ban_owner = Command::Ban {
        room: room.id,
        user: owner_user.id,
    };
    assert_eq!(refused(&member, ban_owner).await, Some(ErrorCode::NotOwner));

    let () = run(
        &owner,
        Command::Ban {
            room: room.id,
            user: member_user.id,
        },
    )
    .await;
    // The banned member's app is told, live, by whom, and the room is gone from its list.
    let (by_name, banned) = member_ui
        .wait_for("the removal notice", |s| match s {
            Seen::Event(AppEvent::RemovedFromRoom {
                room: r,
                room_name,
                by_name,
                banned,
            }) if *r == room.id => {
                assert_eq!(room_name, "town square");
                Some((by_name.clone(), *banned))
            }
            _ => None,
        })
        .await;
    assert!(banned, "a ban, not a plain removal");
    assert_eq!(by_name.as_deref(), Some(owner_user.username.as_str()));
    assert!(!room_ids(&member).await.contains(&room.id));
    assert_eq!(
        refused(&member, Command::JoinRoom { room: room.id }).await,
        Some(ErrorCode::Banned)
    );
    let bans: Vec<UserRef> = run(&owner, Command::Bans { room: room.id }).await;
    assert_eq!(
        bans,
        vec![UserRef {
            id: member_user.id,
            username: member_user.username.clone()
        }]
    );

    let () = run(
        &owner,
        Command::Unban {
            room: room.id,
            user: member_user.id,
        },
    )
    .await;
    let bans: Vec<UserRef> = run(&owner, Command::Bans { room: room.id }).await;
    assert!(bans.is_empty(), "{bans:?}");
    let _: Room = run(&member, Command::JoinRoom { room: room.id }).await;
    assert!(room_ids(&member).await.contains(&room.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_and_unblock_from_the_app() {
    let redis = Redis::start().await;
    let server = Server::start(&redis).await;
    let (alice_home, pest_home) = (Home::new(), Home::new());
    let (alice, _alice_ui, alice_user) = signed_up(&alice_home, &server, "alice").await;
    let (pest, mut pest_ui, pest_user) = signed_up(&pest_home, &server, "pest").await;
    let dm: Room = run(
        &pest,
        Command::OpenDm {
            user: alice_user.id,
        },
    )
    .await;

    let () = run(&alice, Command::Block { user: pest_user.id }).await;
    let blocks: Vec<UserRef> = run(&alice, Command::Blocks).await;
    assert_eq!(
        blocks,
        vec![UserRef {
            id: pest_user.id,
            username: pest_user.username.clone()
        }]
    );
    // The blocked user: no new DM, and a message in the old one fails with the reason.
    assert_eq!(
        refused(
            &pest,
            Command::OpenDm {
                user: alice_user.id
            }
        )
        .await,
        Some(ErrorCode::Blocked)
    );
    let _: serde_json::Value = run(
        &pest,
        Command::Send {
            room: dm.id,
            body: "are you there?".into(),
            reply_to: None,
            mentions: Vec::new(),
            mention_room: false,
        },
    )
    .await;
    let failed = pest_ui
        .wait_message("the refused message", |m| {
            m.room == dm.id && matches!(m.status, MessageStatus::Failed { .. })
        })
        .await;
    assert!(
        matches!(
            failed.status,
            MessageStatus::Failed {
                code: ErrorCode::Blocked,
                ..
            }
        ),
        "{failed:?}"
    );
    // Blocking yourself is refused; an unknown user too.
    assert_eq!(
        refused(
            &alice,
            Command::Block {
                user: alice_user.id
            }
        )
        .await,
        Some(ErrorCode::BadRequest)
    );
    assert_eq!(
        refused(
            &alice,
            Command::Unblock {
                user: UserId(9_999_999)
            }
        )
        .await,
        Some(ErrorCode::UserNotFound)
    );

    let () = run(&alice, Command::Unblock { user: pest_user.id }).await;
    let blocks: Vec<UserRef> = run(&alice, Command::Blocks).await;
    assert!(blocks.is_empty(), "{blocks:?}");
    let again: Room = run(
        &pest,
        Command::OpenDm {
            user: alice_user.id,
        },
    )
    .await;
    assert_eq!(again.id, dm.id);
}
