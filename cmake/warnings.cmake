# Warnings are errors-in-waiting: the tree builds clean with -Wall -Wextra.
function(nodectl_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wno-missing-field-initializers)
  if(NODECTL_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${NODECTL_SANITIZE} -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=${NODECTL_SANITIZE})
  endif()
endfunction()
