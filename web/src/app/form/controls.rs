//! The Run form's controls: one per kind of value, and the row editor of a
//! list of objects (rows added and removed, a control per property).

use yew::prelude::*;

use super::fields::{Field, Kind, Row, row_of};
use crate::app::view::{changed_value, input_value, json_text};

/// One control: where it is, what it holds, and where its changes go.
pub struct Control {
    pub id: String,
    /// Its name for screen readers, where no label of its own is beside it.
    pub label: Option<String>,
    pub text: String,
    pub required: bool,
    pub set: Callback<String>,
    /// The id of the message that says what is wrong with it, if anything.
    pub error_id: Option<String>,
}

pub fn control(kind: &Kind, control: Control) -> Html {
    let Control { id, label, text, required, set, error_id } = control;
    let invalid = error_id.is_some().to_string();
    match kind {
        Kind::Boolean => {
            let checked = text == "true";
            let toggle = if checked { "false" } else { "true" };
            html! {
                <input {id} type="checkbox" {checked} aria-label={label} aria-describedby={error_id}
                    onchange={Callback::from(move |_| set.emit(toggle.to_owned()))} />
            }
        }
        Kind::Choice(choices) => html! {
            <select {id} aria-label={label} aria-describedby={error_id} aria-invalid={invalid}
                onchange={Callback::from(move |e: Event| set.emit(changed_value(&e)))}>
                if !required { <option value="" selected={text.is_empty()}>{ "(default)" }</option> }
                { for choices.iter().map(|choice| {
                    let value = choice.to_string();
                    html! { <option selected={value == text} value={value.clone()}>{ json_text(choice) }</option> }
                }) }
            </select>
        },
        Kind::Rows(_) | Kind::Json => html! {
            <textarea {id} rows="4" spellcheck="false" aria-label={label} aria-describedby={error_id}
                aria-invalid={invalid} value={text}
                oninput={Callback::from(move |e: InputEvent| set.emit(e.target_unchecked_into::<web_sys::HtmlTextAreaElement>().value()))} />
        },
        Kind::Text | Kind::Integer | Kind::Number => {
            let mode = match kind {
                Kind::Integer => "numeric",
                Kind::Number => "decimal",
                _ => "text",
            };
            html! {
                <input {id} type="text" inputmode={mode} value={text} aria-label={label}
                    aria-describedby={error_id} aria-invalid={invalid}
                    oninput={Callback::from(move |e: InputEvent| set.emit(input_value(&e)))} />
            }
        }
    }
}

/// The rows of a list of objects being edited.
pub struct RowsEditor<'a> {
    /// The list's id: `ID-ROW-PROPERTY` names each cell's control.
    pub id: String,
    pub columns: &'a [Field],
    pub rows: Vec<Row>,
    pub set: Callback<Vec<Row>>,
    pub error_id: Option<String>,
}

pub fn rows_editor(editor: RowsEditor<'_>) -> Html {
    let RowsEditor { id, columns, rows, set, error_id } = editor;
    let with = {
        let (rows, set) = (rows.clone(), set.clone());
        move |change: &dyn Fn(&mut Vec<Row>)| {
            let mut next = rows.clone();
            change(&mut next);
            set.emit(next);
        }
    };
    let add = {
        let (with, blank) = (with.clone(), row_of(columns, &serde_json::Value::Null));
        Callback::from(move |_| with(&|rows: &mut Vec<Row>| rows.push(blank.clone())))
    };
    html! {
        <div class="rows" id={id.clone()} aria-describedby={error_id}>
            if !rows.is_empty() {
                <table class="rows-table">
                    <thead><tr>
                        { for columns.iter().map(|column| html! {
                            <th title={column.help.clone()}>{ &column.name }
                                if column.required { <span class="required" title="required">{ " *" }</span> }
                            </th>
                        }) }
                        <th></th>
                    </tr></thead>
                    <tbody>
                    { for rows.iter().enumerate().map(|(index, row)| {
                        let remove = {
                            let with = with.clone();
                            Callback::from(move |_| with(&|rows: &mut Vec<Row>| {
                                if index < rows.len() {
                                    rows.remove(index);
                                }
                            }))
                        };
                        html! {
                            <tr>
                                { for columns.iter().map(|column| {
                                    let set = {
                                        let (with, name) = (with.clone(), column.name.clone());
                                        Callback::from(move |text: String| with(&|rows: &mut Vec<Row>| {
                                            if let Some(row) = rows.get_mut(index) {
                                                row.insert(name.clone(), text.clone());
                                            }
                                        }))
                                    };
                                    let text = row.get(&column.name).cloned().unwrap_or_default();
                                    html! { <td>{ control(&column.kind, Control {
                                        id: format!("{id}-{index}-{}", column.name),
                                        label: Some(format!("{} of row {}", column.name, index + 1)),
                                        text,
                                        required: column.required,
                                        set,
                                        error_id: None,
                                    }) }</td> }
                                }) }
                                <td><button type="button" class="small" onclick={remove}
                                    aria-label={format!("Remove row {}", index + 1)}>{ "Remove" }</button></td>
                            </tr>
                        }
                    }) }
                    </tbody>
                </table>
            }
            <button type="button" class="small add-row" onclick={add}>{ "Add row" }</button>
        </div>
    }
}
