// crmhub operator UI. Every page works without this script; it only adds search as you type,
// times in the operator's own time zone, and "/" to jump to the search box.
(function () {
  "use strict";

  var formats = {
    datetime: new Intl.DateTimeFormat(undefined, {dateStyle: "medium", timeStyle: "short"}),
    date: new Intl.DateTimeFormat(undefined, {dateStyle: "medium"})
  };

  // The server writes times in UTC; show them as the operator's clock does.
  function localTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      var format = formats[el.getAttribute("data-local")];
      if (format && !isNaN(when.getTime())) {
        el.title = el.textContent;
        el.textContent = format.format(when);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    var form = document.querySelector("form[data-live-search]");
    var input = document.querySelector("form.search input[name=q]");

    document.addEventListener("keydown", function (event) {
      var typing = /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName);
      if (event.key === "/" && input && !typing) {
        event.preventDefault();
        input.focus();
        input.select();
      }
    });

    if (!form || !document.getElementById("results")) {
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
  });
})();
