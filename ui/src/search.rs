//! Search-as-you-type, shared by the message search in the side bar and the people search of
//! the "new direct message" dialog: wait until typing pauses, ask the backend, and show only
//! the answer to the newest query (an older answer that arrives late is dropped).

use crate::ipc;
use gloo::timers::callback::Timeout;
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use web_sys::HtmlInputElement;
use yew::platform::spawn_local;
use yew::prelude::*;

/// What the search shows.
#[derive(Debug, PartialEq)]
pub enum Found<T> {
    /// Nothing typed.
    Idle,
    Searching,
    Results(Rc<Vec<T>>),
    /// The backend failed; a sentence for people.
    Failed(String),
}

impl<T> Clone for Found<T> {
    fn clone(&self) -> Self {
        match self {
            Found::Idle => Found::Idle,
            Found::Searching => Found::Searching,
            Found::Results(r) => Found::Results(r.clone()),
            Found::Failed(s) => Found::Failed(s.clone()),
        }
    }
}

/// Numbers queries so only the newest one's answer is shown.
#[derive(Debug, Default)]
pub struct Latest(u64);

impl Latest {
    /// A new query starts (or the search is cleared): earlier answers become stale.
    pub fn begin(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }

    /// Whether the answer to query `ticket` is still wanted.
    pub fn is_current(&self, ticket: u64) -> bool {
        self.0 == ticket
    }
}

/// The search box's state and handlers.
pub struct Search<T> {
    /// The text as typed.
    pub query: String,
    pub found: Found<T>,
    pub oninput: Callback<InputEvent>,
    /// Empties the box and the results.
    pub clear: Callback<()>,
}

/// Search-as-you-type: `search` runs `delay_ms` after the last keystroke, with the trimmed
/// query; empty input shows [`Found::Idle`] without asking.
#[hook]
pub fn use_search<T, F, Fut>(delay_ms: u32, search: F) -> Search<T>
where
    T: 'static,
    F: Fn(String) -> Fut + 'static,
    Fut: Future<Output = ipc::Result<Vec<T>>> + 'static,
{
    let query = use_state(String::new);
    let found = use_state(|| Found::<T>::Idle);
    let timer = use_mut_ref(|| None::<Timeout>);
    let latest: Rc<RefCell<Latest>> = use_mut_ref(Latest::default);
    let search = Rc::new(search);

    let oninput = {
        let (query, found, timer, latest) =
            (query.clone(), found.clone(), timer.clone(), latest.clone());
        Callback::from(move |e: InputEvent| {
            let value = e.target_unchecked_into::<HtmlInputElement>().value();
            query.set(value.clone());
            let ticket = latest.borrow_mut().begin();
            let term = value.trim().to_string();
            if term.is_empty() {
                timer.borrow_mut().take();
                found.set(Found::Idle);
                return;
            }
            found.set(Found::Searching);
            let (found, latest, search) = (found.clone(), latest.clone(), search.clone());
            *timer.borrow_mut() = Some(Timeout::new(delay_ms, move || {
                let answer = search(term);
                spawn_local(async move {
                    let result = answer.await;
                    if !latest.borrow().is_current(ticket) {
                        return;
                    }
                    found.set(match result {
                        Ok(items) => Found::Results(Rc::new(items)),
                        Err(e) => Found::Failed(e.user_message()),
                    });
                });
            }));
        })
    };
    let clear = {
        let (query, found, timer, latest) =
            (query.clone(), found.clone(), timer.clone(), latest.clone());
        Callback::from(move |()| {
            latest.borrow_mut().begin();
            timer.borrow_mut().take();
            query.set(String::new());
            found.set(Found::Idle);
        })
    };
    Search {
        query: (*query).clone(),
        found: (*found).clone(),
        oninput,
        clear,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_newest_query_is_answered() {
        let mut latest = Latest::default();
        let first = latest.begin();
        let second = latest.begin();
        // The first query's answer arrives after the second was typed: dropped.
        assert!(!latest.is_current(first));
        assert!(latest.is_current(second));
        // Clearing the box makes every pending answer stale.
        latest.begin();
        assert!(!latest.is_current(second));
    }
}
