/* assets.S - the files imgproc-web serves as they are, built into it: the
 * OpenAPI document and the page.  Only these are served (page.c): there is
 * no folder a request could name a path in. */
    .section .rodata
#define ASSET(name, file) \
    .global name; .global name##_end; \
name: .incbin file; \
name##_end: .byte 0

    ASSET(web_openapi, "web/openapi.json")
    ASSET(web_page_html, "web/page/index.html")
    ASSET(web_page_js, "web/page/app.js")
    ASSET(web_page_css, "web/page/style.css")
    ASSET(web_page_icon, "web/page/icon.svg")
    .section .note.GNU-stack,"",@progbits
