// The designer's state: the form being edited and what the page knows around it. Data only,
// no DOM: designer.js owns it and changes it through its actions (`commit` for the form, so
// that undo sees every change); the properties panel and the save path get it as
// `designer.state` from the designer handle they are given.

import { adoptForm } from "/static/designer-model.js";

/** The state for the page's data (the JSON the server renders into #designer-data). */
export function createState(data) {
  const appLocales = data.app.locales?.length ? data.app.locales : ["en"];
  const form = data.form ? adoptForm(data.form) : { key: "", label: "", fields: [] };
  form.fields ??= [];
  return {
    app: data.app, // {key, locales, forms: [{key, label}]}
    appLocales,
    // the app's locales first, then English and Chinese: the label inputs shown
    editLocales: [...appLocales, ...["en", "zh-CN"].filter((l) => !appLocales.includes(l))],
    form, // the definition as stored, plus the private `_uid`/`_kt` markers
    // not saved yet: its key may still change (a form started from a template is new too)
    isNew: Boolean(data.is_new) || !data.form,
    formKeyTouched: Boolean(data.form) && !data.is_new, // the form key was typed (no longer derived from the name)
    formIndex: data.form_index, // where the form sits in the app (for the server's error paths)
    revision: data.revision, // the app revision the page was opened at (If-Match)
    selected: null, // the selected field's uid, or null for the form's own settings
    errors: new Map(), // uid (or "form") -> {property: [messages]} from the last save
    generalErrors: [], // problems elsewhere in the app
    saving: false,
  };
}
