// Building the page from data, never from HTML strings: every text goes in as a text node, so a
// file name can never become markup. (The page's policy requires Trusted Types for HTML sinks,
// and none is defined: assigning markup to an element would throw.)

/** An element: h('button', {class: 'primary', onclick: f}, 'Save'). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value == null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'value') el.value = value;
    else if (key === 'checked') el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An SVG element (for the QR code). */
export function svg(tag, attrs) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs ?? {})) el.setAttribute(key, String(value));
  return el;
}

let statusTimer;
/** A short message in the live region (read by screen readers). */
export function say(text) {
  const el = document.getElementById('status');
  el.textContent = text;
  el.classList.add('shown');
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => el.classList.remove('shown'), 4000);
}

/** Bytes in words: 1.5 MB. */
export function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  do { v /= 1024; i += 1; } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** A time as the reader's locale writes it. */
export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString();
}

/** A modal dialog; resolves with what `build` passes to `done` (undefined when dismissed). */
export function dialog(title, build) {
  return new Promise((resolve) => {
    const heading = h('h2', { id: `dlg-${Math.random().toString(36).slice(2)}` }, title);
    const box = h('dialog', { 'aria-labelledby': heading.id }, heading);
    let result;
    const done = (value) => { result = value; box.close(); };
    box.addEventListener('close', () => { box.remove(); resolve(result); });
    append(box, [build(done)]);
    document.body.append(box);
    box.showModal();
  });
}

/** Asks to confirm an action; resolves true when confirmed. */
export function confirmAction(title, text, action, danger = true) {
  return dialog(title, (done) => [
    h('p', null, text),
    h('div', { class: 'actions' },
      h('button', { class: danger ? 'danger' : 'primary', onclick: () => done(true) }, action),
      h('button', { onclick: () => done(false) }, 'Cancel')),
  ]).then(Boolean);
}

/** A read-only field with a copy button: for a secret shown once or a link. */
export function copyField(label, value) {
  const id = `copy-${Math.random().toString(36).slice(2)}`;
  const input = h('input', { id, readonly: true, value });
  const note = h('span', { class: 'small muted', 'aria-live': 'polite' });
  return h('div', null,
    h('label', { for: id }, label),
    h('div', { class: 'secret' }, input,
      h('button', {
        type: 'button',
        onclick: async () => {
          input.select();
          try {
            await navigator.clipboard.writeText(value);
            note.textContent = 'Copied.';
          } catch {
            note.textContent = 'Press Ctrl+C (⌘C) to copy the selected text.';
          }
        },
      }, 'Copy'), note));
}

/** A form's fields as an object. */
export function fields(form) {
  return Object.fromEntries(new FormData(form).entries());
}
