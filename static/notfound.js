// The page a browser gets for an address that leads nowhere: says which one,
// in the reader's language, with the way home.

import { $, initPage } from "./common.js";

initPage("title.notFound");
/** The address as the reader typed it, "%20" back to a space (as it is, if it does not decode). */
function typedAddress() {
  const address = window.location.pathname + window.location.search;
  try {
    return decodeURI(address);
  } catch (error) {
    return address;
  }
}

// As text: the address is whatever someone typed or linked to.
$("#not-found-path").textContent = typedAddress();
