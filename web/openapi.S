/* openapi.S - web/openapi.json inside imgproc-web, served at /v1/openapi.json. */
    .section .rodata
    .global web_openapi
    .global web_openapi_end
web_openapi:
    .incbin "web/openapi.json"
web_openapi_end:
    .byte 0
    .section .note.GNU-stack,"",@progbits
