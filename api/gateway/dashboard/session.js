// The API key of this browser tab. It lives in session storage only (gone when the tab
// closes), never in a URL, a cookie or the page, and is read only to set the X-API-Key header.

const STORAGE_KEY = 'opensandbox.apiKey';

export function apiKey() {
  return sessionStorage.getItem(STORAGE_KEY);
}

export function remember(key) {
  sessionStorage.setItem(STORAGE_KEY, key);
}

export function forget() {
  sessionStorage.removeItem(STORAGE_KEY);
}
