/** A tiny DOM builder: `h('button', { class: 'primary', onclick }, 'Envoyer')`. */

type Attrs = Record<string, string | boolean | number | ((event: Event) => void) | undefined>;
type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.replace(/^on/, ''), value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child);
  }
  return element;
}

let counter = 0;

/** A labelled field: the label's `for` names the control (WCAG 1.3.1, 4.1.2). */
export function field(label: string, control: HTMLInputElement | HTMLTextAreaElement): HTMLElement {
  counter += 1;
  control.id ||= `f${counter}`;
  return h('div', {}, h('label', { for: control.id }, label), control);
}

/** Replace the main region and move focus to its heading (screen readers, keyboard). */
export function show(main: HTMLElement, ...children: Child[]): void {
  main.replaceChildren(...children.filter((c): c is Node | string => Boolean(c)));
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus();
  }
}
