// XLSForm rules in the browser: the same trees and rules as collector/expressions.py (the server
// is the authority; tests run both on shared vectors). No eval: the page's CSP forbids it.
"use strict";
(function () {
  const NUMBER = /^-?(\d+(\.\d*)?|\.\d+)$/;
  const DATE = /^\d{4}-\d{2}-\d{2}$/;

  function value(answer) {
    if (answer === null || answer === undefined) return "";
    if (Array.isArray(answer)) return answer.map(String).join(" ");
    if (typeof answer === "boolean") return answer ? "1" : "0";
    return answer; // a number or a string
  }

  function number(v) {
    if (typeof v === "boolean") return v ? 1 : 0;
    if (typeof v === "number") return v;
    const text = String(v).trim();
    if (NUMBER.test(text)) return parseFloat(text);
    if (DATE.test(text)) {
      const [y, m, d] = text.split("-").map(Number);
      const ms = Date.UTC(y, m - 1, d);
      const back = new Date(ms);
      if (back.getUTCFullYear() !== y || back.getUTCMonth() !== m - 1 || back.getUTCDate() !== d) {
        return NaN;
      }
      return ms / 86400000;
    }
    return NaN;
  }

  function boolean(v) {
    if (typeof v === "boolean") return v;
    if (typeof v === "number") return !(v === 0 || Number.isNaN(v));
    return v !== "";
  }

  function string(v) {
    if (typeof v === "boolean") return v ? "true" : "false";
    if (typeof v === "number") {
      if (Number.isNaN(v)) return "NaN";
      if (!Number.isFinite(v)) return v > 0 ? "Infinity" : "-Infinity";
      return String(v); // whole numbers print without a point, as in Python's string()
    }
    return String(v);
  }

  function equal(a, b) {
    if (typeof a === "boolean" || typeof b === "boolean") return boolean(a) === boolean(b);
    if (typeof a === "number" || typeof b === "number") return number(a) === number(b);
    return String(a) === String(b);
  }

  function index(v) {
    const n = number(v);
    return Number.isNaN(n) ? 0 : Math.max(0, Math.trunc(n));
  }

  function today() {
    const now = new Date();
    const pad = (n) => String(n).padStart(2, "0");
    return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
  }

  function call(name, a) {
    switch (name) {
      case "selected": return string(a[0]).split(/\s+/).includes(string(a[1]).trim());
      case "count-selected": return string(a[0]).split(/\s+/).filter((s) => s !== "").length;
      case "not": return !boolean(a[0]);
      case "true": return true;
      case "false": return false;
      case "if": return boolean(a[0]) ? a[1] : a[2];
      case "coalesce": return string(a[0]) !== "" ? a[0] : a[1];
      case "concat": return a.map(string).join("");
      case "string-length": return [...string(a[0])].length;
      case "contains": return string(a[0]).includes(string(a[1]));
      case "starts-with": return string(a[0]).startsWith(string(a[1]));
      case "ends-with": return string(a[0]).endsWith(string(a[1]));
      case "substr": {
        const text = [...string(a[0])];
        const end = a.length > 2 ? index(a[2]) : text.length;
        return text.slice(index(a[1]), end).join("");
      }
      case "number": return number(a[0]);
      case "int": {
        const n = number(a[0]);
        return Number.isFinite(n) ? Math.trunc(n) : n;
      }
      case "string": return string(a[0]);
      case "boolean": return boolean(a[0]);
      case "round": {
        const n = number(a[0]);
        const places = a.length > 1 ? number(a[1]) : 0;
        if (!Number.isFinite(places)) return NaN;
        const scale = Math.pow(10, Math.max(-15, Math.min(15, Math.trunc(places))));
        if (!Number.isFinite(n * scale)) return n;
        return Math.sign(n) * (Math.floor(Math.abs(n) * scale + 0.5) / scale) || 0;
      }
      case "today": return today();
    }
    throw new Error("unknown function " + name);
  }

  function evaluate(tree, values, current, choice) {
    const kind = tree[0];
    const ev = (t) => evaluate(t, values, current, choice);
    switch (kind) {
      case "num":
      case "str": return tree[1];
      case "col": return String((choice || {})[tree[1]] ?? "");
      case ".": return value(current);
      case "ref": return value(values[tree[1]]);
      case "neg": return -number(ev(tree[1]));
      case "call": return call(tree[1], tree.slice(2).map(ev));
      case "and":
      case "or": {
        const left = boolean(ev(tree[1]));
        if (left === (kind === "or")) return left;
        return boolean(ev(tree[2]));
      }
    }
    const left = ev(tree[1]);
    const right = ev(tree[2]);
    if (kind === "=" || kind === "!=") return equal(left, right) === (kind === "=");
    const a = number(left);
    const b = number(right);
    switch (kind) {
      case "<": return a < b;
      case "<=": return a <= b;
      case ">": return a > b;
      case ">=": return a >= b;
      case "+": return a + b;
      case "-": return a - b;
      case "*": return a * b;
      case "div":
        if (b === 0) return a === 0 || Number.isNaN(a) ? NaN : (a > 0 ? Infinity : -Infinity);
        return a / b;
      case "mod": return b === 0 || !Number.isFinite(a) ? NaN : a % b;
    }
    throw new Error("unknown operator " + kind);
  }

  // questions: [key, required, logic, choices] in display order, as the server's form_errors.
  function formErrors(questions, answers, submitted) {
    const errors = {};
    const values = Object.assign({}, answers);
    const relevance = {};
    for (const [key, required, logic, choices] of questions) {
      const answer = answers[key];
      const empty = answer === null || answer === undefined || answer === "" ||
        (Array.isArray(answer) && answer.length === 0);
      relevance[key] = !("relevant" in logic) || boolean(evaluate(logic.relevant, values));
      if (!relevance[key]) {
        if (!empty) errors[key] = ["This question does not apply given your other answers: leave it empty."];
        values[key] = null;
        continue;
      }
      if (empty) {
        if (required && submitted) errors[key] = [logic.required_message || "Answer this question."];
        continue;
      }
      if ("constraint" in logic && !boolean(evaluate(logic.constraint, values, answer))) {
        errors[key] = [logic.constraint_message || "This answer does not meet the form's rule."];
        continue;
      }
      if ("choice_filter" in logic) {
        const names = new Set(choices
          .filter((c) => boolean(evaluate(logic.choice_filter, values, "", Object.assign({}, c.columns || {}, c))))
          .map((c) => c.name));
        const chosen = Array.isArray(answer) ? answer : [answer];
        if (!chosen.every((name) => names.has(name))) {
          errors[key] = ["Choose one of the choices offered for your other answers."];
        }
      }
    }
    return { errors, relevance };
  }

  // The answers with each calculated question's value worked out, as the server's calculated.
  function calculated(questions, answers, numeric) {
    const values = Object.assign({}, answers);
    const formulas = questions.filter(([, , logic]) => "calculate" in logic);
    for (let pass = 0; pass < formulas.length; pass += 1) {
      const before = JSON.stringify(values);
      for (const [key, , logic] of formulas) {
        if ("relevant" in logic && !boolean(evaluate(logic.relevant, values))) {
          values[key] = null;
          continue;
        }
        const result = evaluate(logic.calculate, values);
        if (numeric.includes(key)) {
          const amount = number(result);
          values[key] = Number.isFinite(amount) ? amount : null;
        } else {
          values[key] = string(result).slice(0, 1000) || null;
        }
      }
      if (JSON.stringify(values) === before) break;
    }
    return values;
  }

  window.FormLogic = { evaluate, formErrors, calculated, number, boolean, string };
})();
