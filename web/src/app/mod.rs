//! The app: routes, the frame around every page, and the start-up hook.

mod api;
mod artifacts;
mod charts;
mod form;
mod live;
mod pages;
mod resource;
mod route;
mod view;

use wasm_bindgen::prelude::wasm_bindgen;
use yew::prelude::*;
use yew_router::prelude::*;

pub use route::Route;

/// Called by the generated JavaScript once the module is loaded.
#[wasm_bindgen(start)]
pub fn start() {
    yew::Renderer::<App>::new().render();
}

#[function_component(App)]
fn app() -> Html {
    html! {
        <BrowserRouter>
            <Frame />
        </BrowserRouter>
    }
}

/// Navigation on the left (on top on narrow screens) and the page.
#[function_component(Frame)]
fn frame() -> Html {
    let route = use_route::<Route>().unwrap_or(Route::NotFound);
    let menu_open = use_state(|| false);
    let toggle = {
        let menu_open = menu_open.clone();
        Callback::from(move |_| menu_open.set(!*menu_open))
    };
    let close = {
        let menu_open = menu_open.clone();
        Callback::from(move |_| menu_open.set(false))
    };
    let link = |to: Route, label: &'static str| {
        let current = route.section() == to.section();
        html! {
            <li onclick={close.clone()}>
                <Link<Route> to={to} classes={classes!(current.then_some("current"))}>
                    { label }
                </Link<Route>>
            </li>
        }
    };
    html! {
        <div class="frame">
            <a class="skip" href="#main">{ "Skip to content" }</a>
            <nav class={classes!("nav", menu_open.then_some("open"))} aria-label="Main">
                <div class="brand">
                    <Link<Route> to={Route::Dashboard}>{ "Baton" }</Link<Route>>
                    <button class="menu" aria-label="Menu" aria-expanded={menu_open.to_string()}
                        onclick={toggle}>{ "☰" }</button>
                </div>
                <ul>
                    { link(Route::Dashboard, "Dashboard") }
                    { link(Route::Flows, "Flows") }
                    { link(Route::Deployments, "Deployments") }
                    { link(Route::Runs, "Runs") }
                    { link(Route::Pools, "Work pools") }
                    { link(Route::Automations, "Automations") }
                    { link(Route::Events, "Events") }
                    { link(Route::Webhooks, "Webhooks") }
                    { link(Route::Variables, "Variables") }
                    { link(Route::Secrets, "Secrets") }
                </ul>
                <view::Connection />
            </nav>
            <main id="main" tabindex="-1">
                <Switch<Route> render={pages::page} />
            </main>
        </div>
    }
}
