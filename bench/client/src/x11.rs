//! The window as the X server shows it: the benchmark's own Xvfb (nothing else on it, no window
//! manager), so the one viewable top-level window is the app's.
//!
//! The first frame is the first time that window shows more than one colour: before it, the
//! window is mapped but holds only a background (GTK's, then the page's). That is the moment a
//! user sees something drawn, and it needs no hook in either app.

use crate::{Error, Result};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt, ImageFormat, MapState};
use x11rb::rust_connection::RustConnection;

/// A top-level window: id, x, y, width, height.
type Window = (u32, i16, i16, u16, u16);

pub struct X {
    conn: RustConnection,
    root: u32,
}

/// What one look at the screen found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// No viewable top-level window yet.
    NoWindow,
    /// A window, one colour only.
    Blank,
    /// A window with something drawn.
    Drawn,
}

fn x_err(e: impl std::fmt::Display) -> Error {
    Error::X11(e.to_string())
}

impl X {
    pub fn connect(display: &str) -> Result<X> {
        let (conn, screen) = RustConnection::connect(Some(display)).map_err(x_err)?;
        let root = conn.setup().roots[screen].root;
        Ok(X { conn, root })
    }

    /// The viewable top-level windows larger than 100×100, as (id, x, y, width, height).
    fn windows(&self) -> Result<Vec<Window>> {
        let children = self
            .conn
            .query_tree(self.root)
            .map_err(x_err)?
            .reply()
            .map_err(x_err)?
            .children;
        let mut out = Vec::new();
        for w in children {
            let Ok(Ok(attrs)) = self.conn.get_window_attributes(w).map(|c| c.reply()) else {
                continue;
            };
            if attrs.map_state != MapState::VIEWABLE {
                continue;
            }
            let Ok(Ok(g)) = self.conn.get_geometry(w).map(|c| c.reply()) else {
                continue;
            };
            if g.width > 100 && g.height > 100 {
                out.push((w, g.x, g.y, g.width, g.height));
            }
        }
        Ok(out)
    }

    /// Whether a window is shown and whether anything is drawn in it.
    pub fn look(&self) -> Result<Look> {
        let windows = self.windows()?;
        let Some(&(_, x, y, w, h)) = windows.first() else {
            return Ok(Look::NoWindow);
        };
        // From the root window, like a screenshot: what is on the screen there.
        let image = self
            .conn
            .get_image(ImageFormat::Z_PIXMAP, self.root, x, y, w, h, !0)
            .map_err(x_err)?
            .reply()
            .map_err(x_err)?;
        let pixels = image.data.chunks_exact(4);
        let mut first = None;
        for p in pixels {
            let rgb = [p[0], p[1], p[2]];
            match first {
                None => first = Some(rgb),
                Some(f) if f != rgb => return Ok(Look::Drawn),
                Some(_) => {}
            }
        }
        Ok(Look::Blank)
    }

    /// Asks every shown window to close, as a window manager's close button does
    /// (`WM_DELETE_WINDOW`): the chat app hides to its tray.
    pub fn close_windows(&self) -> Result<()> {
        use x11rb::protocol::xproto::{ClientMessageEvent, EventMask};
        let atom = |name: &str| -> Result<u32> {
            Ok(self
                .conn
                .intern_atom(false, name.as_bytes())
                .map_err(x_err)?
                .reply()
                .map_err(x_err)?
                .atom)
        };
        let (protocols, delete) = (atom("WM_PROTOCOLS")?, atom("WM_DELETE_WINDOW")?);
        for (w, ..) in self.windows()? {
            let event =
                ClientMessageEvent::new(32, w, protocols, [delete, x11rb::CURRENT_TIME, 0, 0, 0]);
            self.conn
                .send_event(false, w, EventMask::NO_EVENT, event)
                .map_err(x_err)?;
        }
        self.conn.flush().map_err(x_err)
    }

    /// Keyboard focus: to nothing (`false`), as when the user works in another app and the
    /// window stays visible behind it; or back to where the pointer is (`true`, X's default
    /// without a window manager: the window under the pointer, i.e. the app's).
    pub fn set_focused(&self, focused: bool) -> Result<()> {
        use x11rb::protocol::xproto::InputFocus;
        let (revert, to) = if focused {
            (
                InputFocus::POINTER_ROOT,
                u32::from(InputFocus::POINTER_ROOT),
            )
        } else {
            (InputFocus::NONE, x11rb::NONE)
        };
        self.conn
            .set_input_focus(revert, to, x11rb::CURRENT_TIME)
            .map_err(x_err)?
            .check()
            .map_err(x_err)
    }

    /// Whether any viewable top-level window is left.
    pub fn any_window(&self) -> bool {
        self.windows().is_ok_and(|w| !w.is_empty())
    }
}
