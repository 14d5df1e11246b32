/* page.c - the page: a fixed set of files built into the gateway (assets.S). */
#include <string.h>

#include <civetweb.h>

#include "web.h"

extern const char web_page_html[], web_page_html_end[];
extern const char web_page_js[], web_page_js_end[];
extern const char web_page_css[], web_page_css_end[];
extern const char web_page_icon[], web_page_icon_end[];

/* Every file the page is made of; nothing else is served from here. */
static const struct page_file {
    const char *uri;            /* its address, civetweb's pattern */
    const char *type;
    const char *start, *end;
} files[] = {
    { "/$", "text/html; charset=utf-8", web_page_html, web_page_html_end },
    { "/app.js$", "text/javascript; charset=utf-8", web_page_js, web_page_js_end },
    { "/style.css$", "text/css; charset=utf-8", web_page_css, web_page_css_end },
    { "/icon.svg$", "image/svg+xml", web_page_icon, web_page_icon_end },
};

static int
on_file(struct mg_connection *c, void *data)
{
    const struct page_file *f = data;
    const char *m = mg_get_request_info(c)->request_method;
    char cookie[256] = "";
    web_caller who;

    if (strcmp(m, "GET") != 0)
        return web_problem(c, 405, "method-not-allowed", "the page takes GET");
    /* The page's session, before it makes its first task and opens its socket. */
    if (f == &files[0] && web_session(c, 1, &who) == 0)
        web_session_cookie(&who, cookie, sizeof(cookie));
    return web_send(c, 200, f->type, cookie, f->start, (size_t)(f->end - f->start));
}

void
web_page_routes(struct mg_context *ctx, const web_config *cfg)
{
    (void)cfg;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        mg_set_request_handler(ctx, files[i].uri, on_file, (void *)&files[i]);
}
