# ferry_bpf_object(NAME SOURCE): compile a BPF C file with clang into
# ${NAME}.bpf.o and generate the libbpf skeleton ${NAME}.skel.h with bpftool.
# The result is an INTERFACE library `${NAME}_skel` that puts the skeleton's
# directory on the include path and links libbpf.
find_program(FERRY_BPF_CLANG NAMES clang-19 clang-18 clang-17 clang-16 clang REQUIRED)
find_program(FERRY_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
message(STATUS "BPF compiler: ${FERRY_BPF_CLANG}")

set(FERRY_BPF_CFLAGS -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Wno-unused-function
    -I${PROJECT_SOURCE_DIR}/vmlinux -I${PROJECT_SOURCE_DIR}/include -I${PROJECT_SOURCE_DIR}/bpf)

function(ferry_bpf_object name source)
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/bpf)
  set(obj ${out_dir}/${name}.bpf.o)
  set(skel ${out_dir}/${name}.skel.h)
  file(GLOB bpf_headers ${PROJECT_SOURCE_DIR}/bpf/*.h ${PROJECT_SOURCE_DIR}/include/ferry/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${FERRY_BPF_CLANG} ${FERRY_BPF_CFLAGS} -c ${source} -o ${obj}
    DEPENDS ${source} ${bpf_headers}
    COMMENT "BPF ${name}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${FERRY_BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${name}"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  # SYSTEM: the skeleton is generated C (old-style casts, conversions); its
  # warnings are not ours, so no includer needs pragmas around it.
  target_include_directories(${name}_skel SYSTEM INTERFACE ${out_dir})
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
  set(${name}_BPF_OBJECT ${obj} PARENT_SCOPE)
endfunction()
