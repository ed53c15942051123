//! The Yew UI (being built).
