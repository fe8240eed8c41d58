# project_warnings: an INTERFACE target carrying warning and sanitizer flags,
# linked PRIVATE by every target of ours.
add_library(project_warnings INTERFACE)
target_compile_options(project_warnings INTERFACE
  -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
  -Wold-style-definition -Wimplicit-fallthrough -Wvla -Wundef
  -Wno-unused-parameter)
if(MSGR_WERROR)
  target_compile_options(project_warnings INTERFACE -Werror)
endif()

if(MSGR_SANITIZE STREQUAL "address,undefined")
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
elseif(MSGR_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT MSGR_SANITIZE STREQUAL "none")
  message(FATAL_ERROR "MSGR_SANITIZE must be none, address,undefined or thread")
endif()
