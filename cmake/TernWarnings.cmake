# Warning flags shared by every tern target; TERN_WERROR turns them into errors (CI and presets).
function(tern_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                           -Wno-sign-conversion -Wnon-virtual-dtor)
  if(TERN_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
