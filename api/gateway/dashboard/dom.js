// Building the page safely: every piece of text goes in as a text node or an attribute value,
// never parsed as HTML, so an attacker-chosen host, path or reason in an event renders as the
// characters it is. Nothing here (or anywhere in the dashboard) assigns HTML strings.

const SVG_NS = 'http://www.w3.org/2000/svg';

function setProps(element, props) {
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'on') {
      for (const [event, handler] of Object.entries(value)) element.addEventListener(event, handler);
    } else if (name === 'class') {
      element.setAttribute('class', value);
    } else if (name === 'dataset') {
      Object.assign(element.dataset, value);
    } else if (/^on/i.test(name)) {
      throw new Error(`event handler attribute ${name}: use the on: {…} property`);
    } else if (name === 'value' && 'value' in element) {
      element.value = value;
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
}

function append(element, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else if (child instanceof Node) element.append(child);
    else element.append(document.createTextNode(String(child)));
  }
}

/** An HTML element: h('td', { class: 'x' }, 'text', otherNode). */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  setProps(element, props);
  append(element, children);
  return element;
}

/** An SVG element. */
export function s(tag, props = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  setProps(element, props);
  append(element, children);
  return element;
}

/** Replaces a container's content. */
export function fill(container, ...children) {
  container.replaceChildren();
  append(container, children);
}

/** A table with a caption, column headers and rows of cells (`[label, content]` pairs so
 * narrow screens can show each cell's label). */
export function table(caption, columns, rows, { empty = 'Nothing yet.' } = {}) {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, columns.map((column) => h('th', { scope: 'col' }, column)))),
      h('tbody', {}, rows.map((cells) => h('tr', {},
        cells.map((content, index) => h('td', { 'data-label': columns[index] }, content)))))));
}

/** A labelled control: the label element and the control, joined by id. */
export function labelled(id, label, control) {
  control.id = id;
  return h('span', { class: 'field' }, h('label', { for: id }, label), control);
}

/** A small status badge. */
export function badge(text, tone = text) {
  return h('span', { class: `badge badge-${String(tone).replace(/[^a-z_]/g, '')}` }, text);
}
