// crmhub operator UI. Every page works without this script; it only adds search as you type,
// times in the operator's own time zone, "/" to jump to the search box, dragging deals on a
// pipeline board, "load more" in a board's column, reminders of tasks as they fall due, and a
// deal's product picker.
(function () {
  "use strict";

  var formats = {
    datetime: new Intl.DateTimeFormat(undefined, {dateStyle: "medium", timeStyle: "short"}),
    date: new Intl.DateTimeFormat(undefined, {dateStyle: "medium"})
  };

  // The server writes times in UTC; show them as the operator's clock does.
  function localTime(node) {
    var when = new Date(node.getAttribute("datetime"));
    var format = formats[node.getAttribute("data-local")];
    if (format && !isNaN(when.getTime())) {
      node.title = node.textContent;
      node.textContent = format.format(when);
    }
  }

  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(localTime);
  }

  // An element with text only: what clients and operators typed never becomes markup.
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      node.setAttribute(name, attrs[name]);
    });
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    return node;
  }

  function toLogin() {
    window.location.href = "/login?" + new URLSearchParams(
      {next: window.location.pathname + window.location.search}).toString();
  }

  // -- toasts ----------------------------------------------------------------------------------

  // A message in the corner: {kind: "info"|"error"|"reminder", title, text, link, actions,
  // onClose, timeout}. Errors and reminders stay until closed; the rest fade after a while.
  function toast(options) {
    var box = document.getElementById("toasts");
    if (!box) {
      return null;
    }
    var node = el("div", {"class": "toast " + (options.kind || "info"),
                          role: options.kind === "error" ? "alert" : "status"});
    var head = el("div", {"class": "toast-head"});
    head.appendChild(el("strong", {}, options.title));
    if (options.when) {
      head.appendChild(options.when);
    }
    var close = el("button", {type: "button", "class": "toast-close", "aria-label": "Dismiss"},
                   "×");
    head.appendChild(close);
    node.appendChild(head);
    if (options.text) {
      node.appendChild(el("p", {"class": "toast-text"}, options.text));
    }
    if (options.link || options.actions) {
      var actions = el("div", {"class": "toast-actions"});
      if (options.link) {
        actions.appendChild(el("a", {href: options.link.href}, options.link.text));
      }
      (options.actions || []).forEach(function (action) {
        actions.appendChild(action);
      });
      node.appendChild(actions);
    }
    function dismiss() {
      node.remove();
      if (options.onClose) {
        options.onClose();
      }
    }
    close.addEventListener("click", dismiss);
    box.appendChild(node);
    if (options.timeout) {
      setTimeout(function () { node.remove(); }, options.timeout);
    }
    return node;
  }

  // -- reminders -------------------------------------------------------------------------------
  // The page asks /ui/reminders every few seconds for the manager's tasks that were reminded
  // since the last answer (polling: see ui_reminders in ui_deals.py for why). What was shown
  // and the cursor live in sessionStorage, so moving between pages of this tab neither repeats
  // a reminder nor loses one, and an open reminder stays on screen until dismissed.

  var REMINDER_POLL_MS = 5000;
  var REMINDER_STATE = "crmhub.reminders";
  var REMINDERS_KEPT = 10;

  function loadReminders() {
    var state = null;
    try {
      state = JSON.parse(window.sessionStorage.getItem(REMINDER_STATE));
    } catch (e) {
      state = null;
    }
    // Someone else signed in in this tab: what was shown to the previous user is not theirs.
    if (!state || state.user !== document.body.getAttribute("data-user")) {
      state = {user: document.body.getAttribute("data-user")};
    }
    state.seen = state.seen || {};
    state.open = state.open || [];
    return state;
  }

  function saveReminders(state) {
    try {
      window.sessionStorage.setItem(REMINDER_STATE, JSON.stringify(state));
    } catch (e) {
      // Private mode or full: reminders still show, they may show again on the next page.
    }
  }

  function startReminders() {
    var url = document.body.getAttribute("data-reminders");
    if (!url || !document.getElementById("toasts")) {
      return;
    }
    var badge = document.querySelector("[data-overdue]");
    var state = loadReminders();
    var busy = false;
    var stopped = false;

    function forget(key) {
      state.open = state.open.filter(function (item) { return item.key !== key; });
      saveReminders(state);
    }

    function show(item) {
      var when = el("time", {datetime: item.due_at, "data-local": "datetime"}, item.due_at);
      localTime(when);
      var form = el("form", {method: "post", action: "/tasks/" + encodeURIComponent(item.id)});
      form.appendChild(el("input", {type: "hidden", name: "done", value: "true"}));
      form.appendChild(el("input", {type: "hidden", name: "next",
                                    value: window.location.pathname + window.location.search}));
      form.appendChild(el("button", {type: "submit", "class": "small"}, "Mark done"));
      form.addEventListener("submit", function () { forget(item.key); });
      toast({kind: "reminder", title: "Task due", when: when,
             text: "«" + item.title + "»" + (item.about ? " — " + item.about : ""),
             link: {href: item.url, text: item.about ? "Open the deal" : "Open"},
             actions: [form], onClose: function () { forget(item.key); }});
    }

    function badgeCount(count) {
      if (!badge) {
        return;
      }
      badge.textContent = count > 99 ? "99+" : String(count);
      badge.hidden = !count;
    }

    function poll() {
      if (busy || stopped || document.hidden) {
        return;
      }
      busy = true;
      var query = state.since ? "?" + new URLSearchParams({since: state.since}).toString() : "";
      fetch(url + query, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (response) {
          if (response.status === 401 || response.status === 403) {
            stopped = true;  // signed out (in another tab) or not a manager's key
            return null;
          }
          return response.ok ? response.json() : null;
        })
        .then(function (data) {
          if (!data || stopped) {
            return;
          }
          state = loadReminders();  // another page of this tab may have changed it
          data.items.forEach(function (item) {
            item.key = item.id + "@" + item.reminded_at;
            if (state.seen[item.key]) {
              return;
            }
            state.seen[item.key] = item.reminded_at;
            state.open.push(item);
            show(item);
          });
          // Answers start at `next` from now on: what was reminded before cannot come again.
          var next = new Date(data.next).getTime();
          Object.keys(state.seen).forEach(function (key) {
            if (new Date(state.seen[key]).getTime() <= next) {
              delete state.seen[key];
            }
          });
          state.open = state.open.slice(-REMINDERS_KEPT);
          state.since = data.next;
          saveReminders(state);
          badgeCount(data.overdue);
        })
        .catch(function () {
          // Offline or the hub is restarting: the next poll catches up from the same cursor.
        })
        .then(function () {
          busy = false;
        });
    }

    document.querySelectorAll("form[data-sign-out]").forEach(function (form) {
      form.addEventListener("submit", function () {
        stopped = true;
        try {
          window.sessionStorage.removeItem(REMINDER_STATE);
        } catch (e) {
          // Nothing stored.
        }
      });
    });

    state.open.forEach(show);  // still open from the previous page
    poll();
    setInterval(poll, REMINDER_POLL_MS);
    document.addEventListener("visibilitychange", poll);
  }

  // -- the pipeline board ----------------------------------------------------------------------
  // Drag a card to another column: it moves at once and the hub is asked to move the deal
  // (with the version the card was loaded at). The answer brings the columns' counts and sums;
  // a refused move (someone changed the deal, a stage of another pipeline) puts the card back.

  function startBoard() {
    var board = document.querySelector("[data-board]");
    if (!board) {
      return;
    }
    var dialog = document.getElementById("close-dialog");
    var dragged = null;

    function columnOf(node) {
      return node && node.closest ? node.closest("[data-column]") : null;
    }

    function clearTargets() {
      board.querySelectorAll(".drop-target").forEach(function (column) {
        column.classList.remove("drop-target");
      });
    }

    function cardsIn(column) {
      return column.querySelectorAll(".column-deals li.deal").length;
    }

    function refreshMore(column) {
      var more = column.querySelector("a.load-more");
      var count = Number(column.querySelector("[data-count]").textContent);
      if (more) {
        more.hidden = !(count > cardsIn(column));
      }
    }

    function showCounts(summary) {
      var count = board.ownerDocument.querySelector("[data-board-count]");
      var sum = board.ownerDocument.querySelector("[data-board-sum]");
      if (count) {
        count.textContent = summary.count;
      }
      if (sum) {
        sum.textContent = summary.totals;
      }
      summary.columns.forEach(function (column) {
        var node = board.querySelector('[data-column][data-stage-id="' + column.stage_id + '"]');
        if (node) {
          node.querySelector("[data-count]").textContent = column.count;
          node.querySelector("[data-sum]").textContent = column.totals;
          refreshMore(node);
        }
      });
    }

    function failed(status, body) {
      if (status === 409) {
        return "Someone changed this deal since the board was loaded, so it was not moved. " +
               "Reload the board to see where it is now.";
      }
      if (body && body.message) {
        return "The deal was not moved: " + body.message;
      }
      return "The deal was not moved: the hub did not answer. Try again in a moment.";
    }

    function move(card, column, reason) {
      var from = {list: card.parentNode, next: card.nextElementSibling};
      var list = column.querySelector(".column-deals");
      var name = card.querySelector(".deal-name").textContent;
      list.insertBefore(card, list.firstElementChild);  // latest activity first
      card.classList.add("pending");
      card.setAttribute("aria-busy", "true");

      function putBack(status, body) {
        from.list.insertBefore(card, from.next && from.next.parentNode === from.list
                                     ? from.next : null);
        toast({kind: "error", title: "Not moved: «" + name + "»", text: failed(status, body),
               link: status === 409 ? {href: window.location.href, text: "Reload the board"}
                                    : null});
      }

      fetch("/ui/deals/" + encodeURIComponent(card.getAttribute("data-deal-id")) + "/move", {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", Accept: "application/json"},
        body: JSON.stringify({
          stage_id: Number(column.getAttribute("data-stage-id")),
          expected_version: Number(card.getAttribute("data-version")),
          reason: reason || null,
          manager: board.getAttribute("data-manager") || null
        })
      })
        .then(function (response) {
          return response.json()
            .catch(function () { return null; })
            .then(function (body) { return {status: response.status, body: body}; });
        })
        .then(function (result) {
          card.classList.remove("pending");
          card.removeAttribute("aria-busy");
          if (result.status === 401) {
            toLogin();
            return;
          }
          if (result.status !== 200 || !result.body) {
            putBack(result.status, result.body);
            return;
          }
          var deal = result.body.deal;
          card.setAttribute("data-version", deal.version);
          card.setAttribute("data-stage-id", deal.stage_id);
          if (deal.status !== "open") {  // closed: it leaves the board
            card.remove();
            toast({kind: "info", title: "Deal " + deal.status + ": «" + name + "»",
                   text: "Moved to «" + deal.stage_name + "».",
                   link: {href: "/deals/" + encodeURIComponent(deal.id), text: "Open the deal"},
                   timeout: 8000});
          }
          showCounts(result.body.board);
        })
        .catch(function () {
          card.classList.remove("pending");
          card.removeAttribute("aria-busy");
          putBack(0, null);
        });
    }

    // A won or lost stage closes the deal: ask why first (optional), as the REST API keeps it.
    function askReason(card, column) {
      if (!dialog || typeof dialog.showModal !== "function") {
        move(card, column, null);
        return;
      }
      var text = dialog.querySelector("textarea");
      dialog.querySelector("[data-dialog-title]").textContent =
        "Close «" + card.querySelector(".deal-name").textContent + "» as " +
        column.getAttribute("data-stage-kind") + " (" + column.getAttribute("data-stage-name") +
        ")";
      text.value = "";
      dialog.returnValue = "";
      dialog.addEventListener("close", function closed() {
        dialog.removeEventListener("close", closed);
        if (dialog.returnValue === "confirm") {
          move(card, column, text.value.trim());
        }
      });
      dialog.showModal();
      text.focus();
    }

    function drop(card, column) {
      if (column.getAttribute("data-stage-kind") === "open") {
        move(card, column, null);
      } else {
        askReason(card, column);
      }
    }

    board.addEventListener("dragstart", function (event) {
      var card = event.target.closest ? event.target.closest("li.deal") : null;
      if (!card || card.classList.contains("pending")) {
        event.preventDefault();
        return;
      }
      dragged = card;
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", card.getAttribute("data-deal-id"));
      card.classList.add("dragging");
    });
    board.addEventListener("dragend", function () {
      if (dragged) {
        dragged.classList.remove("dragging");
      }
      dragged = null;
      clearTargets();
    });
    board.addEventListener("dragover", function (event) {
      var column = columnOf(event.target);
      if (!dragged || !column || column === columnOf(dragged)) {
        return;
      }
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      if (!column.classList.contains("drop-target")) {
        clearTargets();
        column.classList.add("drop-target");
      }
    });
    board.addEventListener("dragleave", function (event) {
      var column = columnOf(event.target);
      if (column && !column.contains(event.relatedTarget)) {
        column.classList.remove("drop-target");
      }
    });
    board.addEventListener("drop", function (event) {
      var column = columnOf(event.target);
      var card = dragged;
      if (!card || !column || column === columnOf(card)) {
        return;
      }
      event.preventDefault();
      clearTargets();
      card.classList.remove("dragging");
      dragged = null;
      drop(card, column);
    });

    // "Load more": the column's next page (a page of its own without this script), from as
    // many cards as the column holds now, so moves made meanwhile shift nothing out of sight.
    board.addEventListener("click", function (event) {
      var more = event.target.closest ? event.target.closest("a.load-more") : null;
      if (!more) {
        return;
      }
      event.preventDefault();
      var column = columnOf(more);
      var list = column.querySelector(".column-deals");
      var url = new URL(more.href, window.location.href);
      url.searchParams.set("offset", String(cardsIn(column)));
      more.setAttribute("aria-busy", "true");
      fetch(url.toString(), {credentials: "same-origin", headers: {Accept: "text/html"}})
        .then(function (response) {
          if (new URL(response.url).pathname === "/login") {
            toLogin();
            return null;
          }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          more.removeAttribute("aria-busy");
          if (html === null) {
            return;
          }
          var page = new DOMParser().parseFromString(html, "text/html");
          var added = 0;
          page.querySelectorAll("#stage-deals li.deal").forEach(function (card) {
            var shown = document.getElementById(card.id);
            if (shown && (columnOf(shown) === column || shown.classList.contains("pending"))) {
              return;  // dropped here meanwhile: shown already
            }
            if (shown) {
              shown.remove();  // another user moved it here: the fresh page knows better
            }
            list.appendChild(document.adoptNode(card));
            added += 1;
          });
          localTimes(list);
          board.querySelectorAll("[data-column]").forEach(refreshMore);
          if (!added) {
            more.hidden = true;
          }
        })
        .catch(function () {
          more.removeAttribute("aria-busy");
        });
    });
  }

  // -- search as you type ----------------------------------------------------------------------

  function startLiveSearch(input) {
    var form = document.querySelector("form[data-live-search]");
    if (!form || !input || !document.getElementById("results")) {
      return;
    }
    var timer = null;
    var latest = 0;

    function search() {
      var q = input.value.trim();
      var url = q ? "/?" + new URLSearchParams({q: q}).toString() : "/";
      var ticket = ++latest;
      fetch(url, {credentials: "same-origin", headers: {Accept: "text/html"}})
        .then(function (response) {
          if (new URL(response.url).pathname === "/login") {
            window.location.href = response.url;  // the session ended
            return null;
          }
          return response.text();
        })
        .then(function (html) {
          if (html === null || ticket !== latest) {
            return;  // a newer search is on its way
          }
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("results");
          var current = document.getElementById("results");
          if (fresh && current) {
            current.replaceWith(fresh);
            localTimes(fresh);
            history.replaceState(null, "", url);
            document.title = (q || "Clients") + " · crmhub";
          }
        })
        .catch(function () {
          // Offline or the hub is restarting: Enter still submits the form.
        });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(search, 250);
    });
    form.addEventListener("submit", function () {
      clearTimeout(timer);
    });
  }

  // -- incoming-call popups ---------------------------------------------------------------------
  // The gateway pushes call events over Server-Sent Events (no polling): call_ringing when one
  // of the operator's extensions rings, with who is calling; then how that call went. The
  // browser's EventSource reconnects by itself after a network or gateway restart.

  var POPUP_LINGER_MS = 8000;

  function postJson(url, body) {
    return fetch(url, {method: "POST", credentials: "same-origin",
                       headers: {"Content-Type": "application/json", Accept: "application/json"},
                       body: JSON.stringify(body)})
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (response.status === 401) {
            toLogin();
          }
          if (!response.ok) {
            throw new Error(data.message || ("HTTP " + response.status));
          }
          return data;
        });
      });
  }

  function callerLine(caller) {
    var who = caller.name || caller.company;
    if (who && caller.name && caller.company) {
      who += ", " + caller.company;
    }
    return who;
  }

  function showRinging(box, shown, event) {
    var call = event.call;
    var caller = event.caller;
    var known = caller.known && caller.contact_id;
    var node = el("section", {"class": "call-popup" + (known ? "" : " unknown"),
                              role: "alertdialog", "aria-label": "Incoming call",
                              "data-call-id": call.id});
    var head = el("div", {"class": "toast-head"});
    head.appendChild(el("strong", {}, "Incoming call"));
    var close = el("button", {type: "button", "class": "toast-close", "aria-label": "Dismiss"}, "×");
    close.addEventListener("click", function () { node.remove(); delete shown[call.id]; });
    head.appendChild(close);
    node.appendChild(head);
    node.appendChild(el("div", {"class": "call-number"}, caller.number || call.client_number_raw || "hidden number"));
    node.appendChild(el("h2", {}, known ? (callerLine(caller) || "Client without a name") : "Unknown number"));
    var facts = [];
    if (caller.manager) {
      facts.push("Manager: " + caller.manager);
    }
    if (call.line) {
      facts.push("Line: " + call.line);
    }
    if (facts.length) {
      node.appendChild(el("div", {"class": "call-state"}, facts.join(" · ")));
    }
    if (caller.open_deals && caller.open_deals.length) {
      node.appendChild(el("div", {"class": "call-state"}, "Open deals"));
      var deals = el("ul", {"class": "call-deals"});
      caller.open_deals.forEach(function (deal) {
        var item = el("li");
        item.appendChild(el("a", {href: "/deals/" + encodeURIComponent(deal.id)}, deal.title));
        item.appendChild(document.createTextNode(" — " + (deal.stage_name || "")));
        deals.appendChild(item);
      });
      node.appendChild(deals);
    }
    if (caller.last_interactions && caller.last_interactions.length) {
      node.appendChild(el("div", {"class": "call-state"}, "Last interactions"));
      var list = el("ul", {"class": "call-history"});
      caller.last_interactions.slice(0, 3).forEach(function (entry) {
        var item = el("li", {}, entry.title + " ");
        var when = el("time", {datetime: entry.occurred_at, "data-local": "datetime"}, entry.occurred_at);
        localTime(when);
        item.appendChild(when);
        list.appendChild(item);
      });
      node.appendChild(list);
    }
    var state = el("div", {"class": "call-state", "data-call-state": ""}, "Ringing at " + event.extensions.join(", "));
    node.appendChild(state);
    var actions = el("div", {"class": "toast-actions"});
    if (caller.contact_id) {
      actions.appendChild(el("a", {href: "/contacts/" + encodeURIComponent(caller.contact_id)},
                             known ? "Open the card" : "Open the new card"));
    } else if (caller.number && /^\+/.test(caller.number)) {
      var create = el("button", {type: "button", "class": "small"}, "Create a card");
      create.addEventListener("click", function () {
        create.disabled = true;
        postJson("/ui/contacts", {phone: caller.number}).then(function (data) {
          window.location.href = data.url;
        }, function (error) {
          create.disabled = false;
          toast({kind: "error", title: "No card created", text: error.message});
        });
      });
      actions.appendChild(create);
    }
    node.appendChild(actions);
    box.prepend(node);
    shown[call.id] = node;
  }

  function showProgress(shown, kind, event) {
    var node = shown[event.call.id];
    if (!node) {
      return;
    }
    var call = event.call;
    var state = node.querySelector("[data-call-state]");
    if (kind === "call_answered") {
      state.textContent = "Answered" + (call.manager ? " by " + call.manager : "");
      return;
    }
    state.textContent = kind === "call_missed" ? "Missed (" + (call.outcome || "missed") + ")" : "Call ended";
    node.classList.add("ended");
    delete shown[call.id];
    setTimeout(function () { node.remove(); }, POPUP_LINGER_MS);
  }

  function startCallPopups() {
    var url = document.body.getAttribute("data-call-stream");
    var box = document.getElementById("call-popups");
    if (!url || !box || !window.EventSource) {
      return;
    }
    var shown = {};
    var source = new EventSource(url);
    source.addEventListener("ready", function () {
      document.body.setAttribute("data-call-stream-ready", "");
    });
    source.addEventListener("call_ringing", function (message) {
      var event = JSON.parse(message.data);
      if (!shown[event.call.id]) {
        showRinging(box, shown, event);
      }
    });
    ["call_answered", "call_finished", "call_missed"].forEach(function (kind) {
      source.addEventListener(kind, function (message) {
        showProgress(shown, kind, JSON.parse(message.data));
      });
    });
  }

  // -- click-to-call -------------------------------------------------------------------------------
  function startCallButtons() {
    document.querySelectorAll("button[data-call-number]").forEach(function (button) {
      button.addEventListener("click", function () {
        button.disabled = true;
        var number = button.getAttribute("data-call-number");
        postJson("/ui/calls", {contact_id: button.getAttribute("data-contact-id"), number: number})
          .then(function (data) {
            toast({kind: "info", title: "Calling " + number,
                   text: "Your phone (extension " + data.call.extension + ") rings first; pick up to reach the client.",
                   timeout: 10000});
          }, function (error) {
            toast({kind: "error", title: "The call could not be placed", text: error.message});
          })
          .then(function () { button.disabled = false; });
      });
    });
  }

  // -- a deal's products: the lines form and the product picker ---------------------------------
  // The lines are a plain form (typed by hand, saved by its button, without this script too).
  // Here the sums follow what is typed, a new empty row appears once the last one is used, and
  // the picker searches the catalog as the manager types (/ui/products, from 2 characters) and
  // fills a line with the chosen product: its id, article (else id) as SKU, name, first price,
  // quantity 1 and its stock. Nothing is saved until "Save products".

  var PICKER_MIN_CHARS = 2;
  var PICKER_DELAY_MS = 250;
  var PICKER_LIMIT = 10;
  var CURRENCY_SIGNS = {RUB: "₽"};

  // Numbers as the server's money() and qty filters write them: 150 000 ₽, 1 500.50 ₽, 12, 1.5.
  function decimal(text) {
    var value = String(text === undefined || text === null ? "" : text)
      .replace(/[\s\u00a0\u202f]/g, "").replace(",", ".");
    return value === "" || isNaN(Number(value)) ? null : Number(value);
  }

  function grouped(text) {
    var parts = text.split(".");
    parts[0] = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, "\u202f");
    return parts.join(".");
  }

  function moneyText(value, currency) {
    if (value === null || value === undefined || !isFinite(value)) {
      return "";
    }
    var cents = Math.round(value * 100);
    var text = grouped(cents % 100 === 0 ? String(cents / 100) : (cents / 100).toFixed(2));
    return (text + "\u00a0" + (CURRENCY_SIGNS[currency] || currency || "")).trim();
  }

  function quantityText(value) {
    var number = decimal(value);
    return number === null ? String(value || "") : String(Math.round(number * 1000) / 1000);
  }

  function stockCell(product) {
    var cell = document.createDocumentFragment();
    var list = el("ul", {"class": "stock-list"});
    product.stock.forEach(function (place) {
      var item = el("li");
      item.appendChild(el("span", {"class": "warehouse"},
                          place.warehouse || place.warehouse_id || "All warehouses"));
      item.appendChild(document.createTextNode(" "));
      item.appendChild(el("strong", {"class": "stock-quantity"}, quantityText(place.quantity)));
      list.appendChild(item);
    });
    cell.appendChild(list);
    var total = el("div", {"class": "stock-total"}, "Total ");
    total.appendChild(el("strong", {"data-stock-total": ""}, quantityText(product.in_stock)));
    if (product.unit) {
      total.appendChild(document.createTextNode(" " + product.unit));
    }
    cell.appendChild(total);
    return cell;
  }

  function startProductLines() {
    var form = document.querySelector("form[data-products-form]");
    if (!form) {
      return null;
    }
    var body = form.querySelector("[data-product-lines]");
    var template = document.getElementById("product-line-template");
    var unsaved = form.querySelector("[data-unsaved]");
    var totalCell = form.querySelector("[data-lines-total]");
    var currency = form.getAttribute("data-currency");

    function field(row, name) {
      return row.querySelector('[name$="-' + name + '"]');
    }

    function changed() {
      if (unsaved) {
        unsaved.hidden = false;
      }
    }

    function refreshSums() {
      var total = 0;
      var complete = true;
      var any = false;
      body.querySelectorAll("tr.product-line").forEach(function (row) {
        var quantity = field(row, "quantity");
        var price = field(row, "price");
        var remove = field(row, "remove");
        var cell = row.querySelector("[data-line-sum]");
        if (!quantity || !price || !cell) {
          return;
        }
        var q = decimal(quantity.value);
        var p = decimal(price.value);
        var sum = q !== null && p !== null ? Math.round(q * p * 100) / 100 : null;
        cell.textContent = sum === null ? "" : moneyText(sum, currency);
        row.classList.toggle("removed", Boolean(remove && remove.checked));
        var typed = quantity.value.trim() || price.value.trim() || field(row, "sku").value.trim();
        if (!typed || (remove && remove.checked)) {
          return;
        }
        any = true;
        if (sum === null) {
          complete = false;
        } else {
          total += sum;
        }
      });
      if (totalCell) {
        totalCell.textContent = any && complete ? moneyText(Math.round(total * 100) / 100, currency) : "";
      }
    }

    function nextIndex() {
      var highest = -1;
      body.querySelectorAll("tr[data-line-index]").forEach(function (row) {
        highest = Math.max(highest, Number(row.getAttribute("data-line-index")) || 0);
      });
      return highest + 1;
    }

    // A row of the server's template, its fields numbered after the others.
    function newRow() {
      var index = String(nextIndex());
      var row = template.content.firstElementChild.cloneNode(true);
      row.setAttribute("data-line-index", index);
      row.querySelectorAll("[name]").forEach(function (input) {
        input.name = input.name.replace("__index__", index);
      });
      return row;
    }

    function blankRow() {
      return body.querySelector("tr[data-blank-row]");
    }

    // Typing in the empty row makes it a line: another empty row comes after it.
    function useBlank(row) {
      if (!row || !row.hasAttribute("data-blank-row") || !template) {
        return;
      }
      row.removeAttribute("data-blank-row");
      var stock = row.querySelector("[data-stock]");
      if (stock && !stock.textContent.trim()) {
        stock.textContent = "—";  // typed by hand: no stock to show
      }
      var fresh = newRow();
      fresh.setAttribute("data-blank-row", "");
      var remove = fresh.querySelector(".line-remove");
      if (remove) {
        remove.remove();
      }
      var freshStock = fresh.querySelector("[data-stock]");
      if (freshStock) {
        freshStock.replaceChildren();
      }
      body.appendChild(fresh);
    }

    form.addEventListener("input", function (event) {
      var row = event.target.closest ? event.target.closest("tr.product-line") : null;
      if (!row) {
        return;
      }
      if (event.target.value && event.target.value.trim()) {
        useBlank(row);
      }
      refreshSums();
      changed();
    });
    form.addEventListener("change", function (event) {
      if (event.target.type === "checkbox") {
        refreshSums();
        changed();
      }
    });

    // A product of the catalog as a line: one more of it if it is on the deal already.
    function addProduct(product) {
      var rows = body.querySelectorAll("tr.product-line");
      for (var i = 0; i < rows.length; i += 1) {
        var id = field(rows[i], "product_id");
        var remove = field(rows[i], "remove");
        if (id && id.value === product.id && !(remove && remove.checked)) {
          var quantity = field(rows[i], "quantity");
          quantity.value = quantityText((decimal(quantity.value) || 0) + 1);
          refreshSums();
          changed();
          quantity.focus();
          quantity.select();
          return rows[i];
        }
      }
      var row = newRow();
      var price = product.prices && product.prices.length ? product.prices[0] : null;
      row.setAttribute("data-product-id", product.id);
      row.classList.add("picked");
      field(row, "product_id").value = product.id;
      field(row, "quantity").value = "1";
      field(row, "price").value = price ? price.amount : "";
      // The catalog's SKU and name, as text (sent in hidden fields), as the page shows them.
      [["sku", product.article || product.id, "code"], ["name", product.name, "span"]]
        .forEach(function (item) {
          var input = field(row, item[0]);
          var shown = el("input", {type: "hidden", name: input.name, value: item[1]});
          input.replaceWith(shown);
          shown.parentNode.appendChild(el(item[2], {"class": "line-" + item[0] + "-text"}, item[1]));
        });
      var stock = row.querySelector("[data-stock]");
      if (stock) {
        stock.replaceChildren(stockCell(product));
      }
      body.insertBefore(row, blankRow());
      refreshSums();
      changed();
      if (price && price.currency && currency && price.currency !== currency) {
        toast({kind: "info", title: "Price in " + price.currency,
               text: "«" + product.name + "» is priced in " + price.currency + " and the deal in " +
                     currency + ": check the price.", timeout: 10000});
      }
      var focus = price ? field(row, "quantity") : field(row, "price");
      focus.focus();
      focus.select();
      return row;
    }

    return {addProduct: addProduct};
  }

  function startProductPicker(lines) {
    var picker = document.querySelector("[data-product-picker]");
    if (!picker || !lines) {
      return;
    }
    var input = picker.querySelector("input[type=search]");
    var list = picker.querySelector("[role=listbox]");
    var status = picker.querySelector("[data-picker-status]");
    var source = picker.getAttribute("data-source");
    var currency = picker.closest("form").getAttribute("data-currency");
    var timer = null;
    var latest = 0;
    var found = [];
    var active = -1;
    picker.hidden = false;

    function close() {
      list.replaceChildren();
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      found = [];
      active = -1;
    }

    function highlight(index) {
      var options = list.querySelectorAll("[role=option]");
      options.forEach(function (option, i) {
        option.setAttribute("aria-selected", i === index ? "true" : "false");
      });
      active = index;
      if (index >= 0 && options[index]) {
        input.setAttribute("aria-activedescendant", options[index].id);
        options[index].scrollIntoView({block: "nearest"});
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function choose(index) {
      var product = found[index];
      if (!product) {
        return;
      }
      latest += 1;  // an answer still on its way is not wanted any more
      clearTimeout(timer);
      close();
      input.value = "";
      status.textContent = "Added «" + product.name + "»: set the quantity and price, then save.";
      lines.addProduct(product);
    }

    function option(product, index) {
      var price = product.prices && product.prices.length ? product.prices[0] : null;
      var inStock = decimal(product.in_stock) || 0;
      var node = el("li", {"class": "product-match", role: "option", id: "product-match-" + index,
                           "aria-selected": "false", "data-product-id": product.id});
      node.appendChild(el("span", {"class": "match-name"}, product.name));
      node.appendChild(el("span", {"class": "match-price"},
                          price ? moneyText(decimal(price.amount), price.currency || currency)
                                : "no price"));
      node.appendChild(el("span", {"class": "match-meta"},
                          (product.article ? "Art. " + product.article : product.id) +
                          (price && price.price_type ? " · " + price.price_type : "")));
      node.appendChild(el("span", {"class": "match-stock" + (inStock > 0 ? "" : " out")},
                          inStock > 0 ? "In stock: " + quantityText(product.in_stock) +
                                        (product.unit ? " " + product.unit : "")
                                      : "Out of stock"));
      // mousedown, not click: the search box keeps its focus (and the list stays) until chosen.
      node.addEventListener("mousedown", function (event) {
        event.preventDefault();
        choose(index);
      });
      node.addEventListener("mousemove", function () {
        if (active !== index) {
          highlight(index);
        }
      });
      return node;
    }

    function show(page) {
      close();
      found = page.items;
      found.forEach(function (product, index) {
        list.appendChild(option(product, index));
      });
      list.hidden = !found.length;
      input.setAttribute("aria-expanded", found.length ? "true" : "false");
      if (!found.length) {
        status.textContent = "Nothing found in the catalog.";
      } else {
        status.textContent = found.length + (page.more ? "+ products found: type more to narrow them."
                                                       : (found.length === 1 ? " product found." : " products found."));
        highlight(0);
      }
    }

    function search() {
      var q = input.value.trim();
      var ticket = ++latest;
      if (q.length < PICKER_MIN_CHARS) {
        close();
        status.textContent = q ? "Type at least " + PICKER_MIN_CHARS + " characters." : "";
        return;
      }
      status.textContent = "Searching…";
      fetch(source + "?" + new URLSearchParams({q: q, limit: String(PICKER_LIMIT)}).toString(),
            {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (response) {
          if (response.status === 401) {
            toLogin();
            return null;
          }
          return response.json().catch(function () { return null; }).then(function (data) {
            if (!response.ok) {
              throw new Error(data && data.message ? data.message : "HTTP " + response.status);
            }
            return data;
          });
        })
        .then(function (page) {
          if (page && ticket === latest) {
            show(page);
          }
        })
        .catch(function (error) {
          if (ticket === latest) {
            close();
            status.textContent = "The catalog did not answer (" + error.message +
                                 "). Try again in a moment, or type the line by hand.";
          }
        });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(search, PICKER_DELAY_MS);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown" && found.length) {
        event.preventDefault();
        highlight((active + 1) % found.length);
      } else if (event.key === "ArrowUp" && found.length) {
        event.preventDefault();
        highlight((active - 1 + found.length) % found.length);
      } else if (event.key === "Enter") {
        event.preventDefault();  // Enter here picks; it never saves the form
        if (found.length) {
          choose(active >= 0 ? active : 0);
        }
      } else if (event.key === "Escape") {
        close();
      }
    });
    input.addEventListener("blur", function () {
      latest += 1;  // gone elsewhere: an answer on its way opens no list
      clearTimeout(timer);
      setTimeout(close, 150);
    });
    input.addEventListener("focus", function () {
      if (input.value.trim().length >= PICKER_MIN_CHARS && !found.length) {
        search();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    var input = document.querySelector("form.search input[name=q]");

    document.addEventListener("keydown", function (event) {
      var typing = /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName);
      if (event.key === "/" && input && !typing) {
        event.preventDefault();
        input.focus();
        input.select();
      }
    });

    // A filter that applies as soon as it changes (its button stays for keyboards and no JS).
    document.querySelectorAll("form[data-auto-submit] select").forEach(function (select) {
      select.addEventListener("change", function () {
        select.form.submit();
      });
    });

    startLiveSearch(input);
    startBoard();
    startReminders();
    startCallPopups();
    startCallButtons();
    startProductPicker(startProductLines());
  });
})();
