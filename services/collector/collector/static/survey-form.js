// The member's survey form: skip logic, choice filters, progress, language, an error summary and
// an autosave kept in this browser only (the server's revisions change only when the member saves).
"use strict";
(function () {
  const form = document.getElementById("survey-form");
  if (!form) return;
  const rules = JSON.parse(form.dataset.rules || "[]");
  const summary = document.getElementById("error-summary");
  const list = document.getElementById("error-list");
  const progress = document.getElementById("form-progress");
  const storageKey = "outcomes-survey-autosave:" + location.pathname;

  function question(key) {
    return form.querySelector(`.question[data-key="${CSS.escape(key)}"]`);
  }
  const numeric = rules.map(([key]) => key)
    .filter((key) => ["integer", "decimal", "boolean"].includes(question(key).dataset.type));
  const calculatedKeys = new Set(rules.filter(([, , logic]) => "calculate" in logic).map(([key]) => key));

  // What the form sends: a hidden question's disabled inputs count as unanswered. With all,
  // every typed value (formErrors blanks the ones of questions found not relevant, in order).
  function answers(all) {
    const found = {};
    for (const [key] of rules) {
      const box = question(key);
      const type = box.dataset.type;
      const inputs = [...box.querySelectorAll(`[name="${CSS.escape(key)}"]`)].filter((i) => all || !i.disabled);
      if (type === "select_many") {
        found[key] = inputs.filter((i) => i.checked).map((i) => i.value);
        continue;
      }
      const raw = inputs.length ? inputs[0].value.trim() : "";
      if (raw === "") found[key] = null;
      else if (type === "integer" || type === "decimal") {
        const n = Number(raw);
        found[key] = Number.isNaN(n) ? raw : n;
      } else if (type === "boolean") found[key] = raw === "yes" ? true : raw === "no" ? false : raw;
      else found[key] = raw;
    }
    return found;
  }

  // What the form sends, with the calculated questions worked out as the server will.
  function withCalculations(found) {
    const values = FormLogic.calculated(rules, found, numeric);
    for (const key of calculatedKeys) {
      const v = values[key];
      document.getElementById("q-" + key).textContent = v === null ? "" : FormLogic.string(v);
    }
    return values;
  }

  function apply() {
    // As the server will see them: the answers of the questions that apply (hidden ones are not
    // sent) and the calculations from those, until what applies settles.
    const typed = answers(true);
    let values = withCalculations(typed);
    let relevance = {};
    for (let pass = 0; pass <= rules.length; pass += 1) {
      ({ relevance } = FormLogic.formErrors(rules, values, false));
      const sent = Object.assign({}, typed);
      for (const key of Object.keys(relevance)) if (!relevance[key]) sent[key] = null;
      const next = withCalculations(sent);
      const settled = JSON.stringify(next) === JSON.stringify(values);
      values = next;
      if (settled) break;
    }
    let shown = 0;
    let answered = 0;
    for (const [key, , logic, choices] of rules) {
      const box = question(key);
      const relevant = relevance[key] !== false;
      box.hidden = !relevant;
      for (const input of box.querySelectorAll("input, select, textarea")) input.disabled = !relevant;
      if (relevant && "choice_filter" in logic) {
        const current = Object.assign({}, values);
        for (const option of box.querySelectorAll("option[value], input[type=checkbox]")) {
          if (option.value === "") continue;
          const choice = choices.find((c) => c.name === option.value) || {};
          const offered = FormLogic.boolean(FormLogic.evaluate(
            logic.choice_filter, current, "", Object.assign({}, choice.columns || {}, choice)));
          option.hidden = !offered;
          option.disabled = !offered;
          const label = option.closest("label");
          if (label && option.type === "checkbox") label.hidden = !offered;
        }
      }
      if (relevant && !calculatedKeys.has(key)) {
        shown += 1;
        const v = values[key];
        if (v !== null && !(Array.isArray(v) && v.length === 0)) answered += 1;
      }
    }
    if (progress) progress.textContent = `${answered} of ${shown} questions answered.`;
  }

  function showErrors(errors) {
    list.replaceChildren();
    for (const box of form.querySelectorAll(".question")) {
      const key = box.dataset.key;
      const field = document.getElementById("q-" + key);
      const message = document.getElementById("err-" + key);
      const problem = errors[key];
      box.classList.toggle("field-error", Boolean(problem));
      message.hidden = !problem;
      message.textContent = problem ? problem.join(" ") : "";
      if (problem) {
        field.setAttribute("aria-invalid", "true");
        field.setAttribute("aria-describedby", "err-" + key);
        const item = document.createElement("li");
        const link = document.createElement("a");
        link.href = "#q-" + key;
        const label = box.querySelector(".q-label");
        link.textContent = `${label ? label.textContent.trim() : key}: ${problem.join(" ")}`;
        item.append(link);
        list.append(item);
      } else {
        field.removeAttribute("aria-invalid");
        field.removeAttribute("aria-describedby");
      }
    }
    summary.hidden = Object.keys(errors).length === 0;
    if (!summary.hidden) summary.focus();
  }

  form.addEventListener("input", () => {
    apply();
    try {
      localStorage.setItem(storageKey, JSON.stringify({ at: new Date().toISOString(), answers: answers(true) }));
    } catch (e) { /* storage full or off: the autosave is a convenience */ }
  });
  form.addEventListener("change", apply);

  form.addEventListener("submit", (event) => {
    const submitted = event.submitter && event.submitter.value === "submit";
    const { errors } = FormLogic.formErrors(rules, withCalculations(answers()), submitted);
    if (Object.keys(errors).length) {
      event.preventDefault();
      showErrors(errors);
      return;
    }
    try { localStorage.removeItem(storageKey); } catch (e) { /* nothing kept */ }
  });

  const language = document.getElementById("form-language");
  if (language) {
    language.addEventListener("change", () => {
      for (const node of document.querySelectorAll(".q-label")) {
        if (node.dataset.default === undefined) node.dataset.default = node.textContent;
        const labels = JSON.parse(node.dataset.labels || "{}");
        node.textContent = labels[language.value] || node.dataset.default;
      }
    });
  }

  function offerRestore() {
    let saved = null;
    try { saved = JSON.parse(localStorage.getItem(storageKey) || "null"); } catch (e) { return; }
    if (!saved || !saved.answers) return;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.id = "restore-autosave";
    button.textContent = `Restore the answers you typed on ${new Date(saved.at).toLocaleString()} (kept in this browser, not saved yet)`;
    button.addEventListener("click", () => {
      for (const [key] of rules) {
        const inputs = [...question(key).querySelectorAll(`[name="${CSS.escape(key)}"]`)];
        const value = saved.answers[key];
        for (const input of inputs) {
          if (input.type === "checkbox") input.checked = Array.isArray(value) && value.includes(input.value);
          else input.value = value === null || value === undefined ? "" : value === true ? "yes" : value === false ? "no" : String(value);
        }
      }
      button.remove();
      apply();
    });
    form.before(button);
  }

  offerRestore();
  apply();
  if (!summary.hidden) summary.focus();
})();
