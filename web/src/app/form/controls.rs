//! The Run form's controls: a field (label, editor, help, problem), one
//! control per kind of value, an object's fields in a group, and the row
//! editor of a list of objects (rows added and removed, a field per
//! property). Objects and rows nest through the same code.

use yew::prelude::*;

use super::fields::{Entries, Entry, Field, Kind, entries_of, entry_of};
use crate::app::view::{changed_value, input_value, json_text, prose};

/// A field: its label, its editor, help and problem. A checkbox sits on
/// the line of its label. `id` names its control (`param-NAME`); the
/// fields of an object and the cells of a row extend it.
pub fn field_view(
    field: &Field,
    id: String,
    entry: Entry,
    set: Callback<Entry>,
    error: Option<String>,
) -> Html {
    let error_id = format!("{id}-error");
    let described = error.as_ref().map(|_| error_id.clone());
    let label = html! {
        <>
            { &field.name }
            if field.required { <span class="required" title="required">{ " *" }</span> }
            <span class="hint">{ format!(" {}", field.kind.hint()) }</span>
        </>
    };
    let editor = entry_editor(
        &field.kind,
        EntryEditor {
            id: id.clone(),
            name: field.name.clone(),
            label: None,
            entry,
            required: field.required,
            set,
            error_id: described,
        },
    );
    let body = match &field.kind {
        Kind::Object(_) | Kind::Rows(_) => html! {
            <><span class="label" id={format!("{id}-label")}>{ label }</span>{ editor }</>
        },
        Kind::Boolean => html! {
            <div class="check">{ editor }<label for={id.clone()}>{ label }</label></div>
        },
        _ => html! { <><label for={id.clone()}>{ label }</label>{ editor }</> },
    };
    html! {
        <div class={classes!("field", error.is_some().then_some("invalid"))}>
            { body }
            if let Some(help) = &field.help { <small>{ prose(help) }</small> }
            if let Some(error) = error {
                <p class="field-error" id={error_id} role="alert">{ prose(&error) }</p>
            }
        </div>
    }
}

/// What edits one entry: where it is, what it holds, where changes go.
pub struct EntryEditor {
    pub id: String,
    /// The field's name.
    pub name: String,
    /// Its name for screen readers, where no label of its own is beside it.
    pub label: Option<String>,
    pub entry: Entry,
    pub required: bool,
    pub set: Callback<Entry>,
    /// The id of the message that says what is wrong with it, if anything.
    pub error_id: Option<String>,
}

/// A control for a plain value, a group of fields for an object, a row
/// editor for a list of objects.
pub fn entry_editor(kind: &Kind, editor: EntryEditor) -> Html {
    let EntryEditor { id, name, label, entry, required, set, error_id } = editor;
    match (kind, entry) {
        (Kind::Object(fields), Entry::Object(entries)) => html! {
            <fieldset class="object" id={id.clone()} aria-label={label} aria-describedby={error_id}>
                { for fields.iter().map(|field| {
                    let with = with_entry(entries.clone(), field.name.clone());
                    let set = set.reform(move |entry| Entry::Object(with(entry)));
                    let entry = entries.get(&field.name).cloned()
                        .unwrap_or_else(|| entry_of(&field.kind, None));
                    field_view(field, format!("{id}-{}", field.name), entry, set, None)
                }) }
            </fieldset>
        },
        (Kind::Rows(columns), Entry::Rows { rows, given }) => rows_editor(RowsEditor {
            id,
            name: label.unwrap_or(name),
            columns,
            rows,
            set: set.reform(move |rows| Entry::Rows { rows, given }),
            error_id,
        }),
        (kind, entry) => {
            let text = match entry {
                Entry::Text(text) => text,
                Entry::Object(_) | Entry::Rows { .. } => String::new(),
            };
            control(
                kind,
                Control { id, label, text, required, set: set.reform(Entry::Text), error_id },
            )
        }
    }
}

/// `entries` with the entry of `name` replaced.
fn with_entry(entries: Entries, name: String) -> impl Fn(Entry) -> Entries {
    move |entry| {
        let mut next = entries.clone();
        next.insert(name.clone(), entry);
        next
    }
}

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
                // Nothing chosen yet: said so, not shown as the first choice.
                else if text.is_empty() { <option value="" selected=true disabled=true>{ "(choose)" }</option> }
                { for choices.iter().map(|choice| {
                    let value = choice.to_string();
                    html! { <option selected={value == text} value={value.clone()}>{ json_text(choice) }</option> }
                }) }
            </select>
        },
        Kind::Object(_) | Kind::Rows(_) | Kind::Json => html! {
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
    /// The list's name for screen readers (`stages`, `notes of row 2`).
    pub name: String,
    pub columns: &'a [Field],
    pub rows: Vec<Entries>,
    pub set: Callback<Vec<Entries>>,
    pub error_id: Option<String>,
}

pub fn rows_editor(editor: RowsEditor<'_>) -> Html {
    let RowsEditor { id, name, columns, rows, set, error_id } = editor;
    let with = {
        let (rows, set) = (rows.clone(), set.clone());
        move |change: &dyn Fn(&mut Vec<Entries>)| {
            let mut next = rows.clone();
            change(&mut next);
            set.emit(next);
        }
    };
    let add = {
        let (with, blank) = (with.clone(), entries_of(columns, None));
        Callback::from(move |_| with(&|rows: &mut Vec<Entries>| rows.push(blank.clone())))
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
                            Callback::from(move |_| with(&|rows: &mut Vec<Entries>| {
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
                                        Callback::from(move |entry: Entry| with(&|rows: &mut Vec<Entries>| {
                                            if let Some(row) = rows.get_mut(index) {
                                                row.insert(name.clone(), entry.clone());
                                            }
                                        }))
                                    };
                                    let entry = row.get(&column.name).cloned()
                                        .unwrap_or_else(|| entry_of(&column.kind, None));
                                    html! { <td>{ entry_editor(&column.kind, EntryEditor {
                                        id: format!("{id}-{index}-{}", column.name),
                                        name: column.name.clone(),
                                        label: Some(format!("{} of row {}", column.name, index + 1)),
                                        entry,
                                        required: column.required,
                                        set,
                                        error_id: None,
                                    }) }</td> }
                                }) }
                                <td><button type="button" class="small" onclick={remove}
                                    aria-label={format!("Remove row {} of {name}", index + 1)}>{ "Remove" }</button></td>
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
