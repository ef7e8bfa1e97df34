/* SPDX-License-Identifier: MIT */
/* The shim trampolines (see shim_trampolines.h): one for allocation and free functions, one for
 * suballocators, x86-64 System V.  Entered by a jump from a thunk of the link's shim object, with the
 * declared function in %r11 (and a suballocator's plan in %r10d), the caller's arguments in their
 * registers and the caller's return address on top of the stack.  Neither touches an argument register
 * before the call, %rax included (only variadic calls give it a meaning, and declared functions are not
 * variadic). */
#if defined(__x86_64__) && defined(__ELF__)

/* The allocation site, defined weak here as in the hooks and the C shims (mallochooks/alloc_site.h):
 * whichever comes first in the link defines it for the whole output. */
    .weak __mallochooks_alloc_site
    .hidden __mallochooks_alloc_site
    .section .tbss,"awT",@nobits
    .balign 8
    .type __mallochooks_alloc_site, @object
    .size __mallochooks_alloc_site, 8
__mallochooks_alloc_site:
    .zero 8

/* The argument registers (System V: six integer, eight vector) stored at, and loaded from, %rsp + INTS
 * (8 bytes each) and %rsp + VECTORS (16 bytes each, 16-aligned). */
.macro save_args ints, vectors
    movq %rdi, \ints+0(%rsp)
    movq %rsi, \ints+8(%rsp)
    movq %rdx, \ints+16(%rsp)
    movq %rcx, \ints+24(%rsp)
    movq %r8, \ints+32(%rsp)
    movq %r9, \ints+40(%rsp)
    .irp i, 0, 1, 2, 3, 4, 5, 6, 7
    movaps %xmm\i, \vectors+16*\i(%rsp)
    .endr
.endm
.macro load_args ints, vectors
    movq \ints+0(%rsp), %rdi
    movq \ints+8(%rsp), %rsi
    movq \ints+16(%rsp), %rdx
    movq \ints+24(%rsp), %rcx
    movq \ints+32(%rsp), %r8
    movq \ints+40(%rsp), %r9
    .irp i, 0, 1, 2, 3, 4, 5, 6, 7
    movaps \vectors+16*\i(%rsp), %xmm\i
    .endr
.endm

    .text
/* ---- allocation and free functions ------------------------------------------------------------------ */
    .p2align 4
    .globl __mallochooks_site_trampoline
    .hidden __mallochooks_site_trampoline
    .type __mallochooks_site_trampoline, @function
__mallochooks_site_trampoline:
.Lsite_begin:
    .cfi_startproc
    .cfi_personality 0x9b, DW.ref.__gcc_personality_v0
    .cfi_lsda 0x1b, .Lsite_lsda
    pushq %rbx
    .cfi_def_cfa_offset 16
    .cfi_offset %rbx, -16
    /* The site in force, kept in %rbx (callee-saved) to be restored after the call.  Initial-exec TLS:
     * one load, never a call that could allocate. */
    movq __mallochooks_alloc_site@gottpoff(%rip), %r10
    movq %fs:(%r10), %rbx
    testq %rbx, %rbx
    jnz .Lsite_call                             /* an outer declared function set it: keep it */
    movq 8(%rsp), %rax                          /* outermost: the site is our caller's call site */
    movq %rax, %rbx                             /* ... unless it lies in a declared static function */
    subq __mallochooks_static_lo(%rip), %rbx
    movq __mallochooks_static_hi(%rip), %r10
    subq __mallochooks_static_lo(%rip), %r10
    cmpq %r10, %rbx
    jb .Lsite_static
.Lsite_set:
    movq __mallochooks_alloc_site@gottpoff(%rip), %r10
    movq %rax, %fs:(%r10)
    xorl %ebx, %ebx                             /* to restore: none */
.Lsite_call:
.Lsite_call_begin:
    call *%r11
.Lsite_call_end:
    movq __mallochooks_alloc_site@gottpoff(%rip), %rcx  /* the result is in %rax/%xmm0: leave them */
    movq %rbx, %fs:(%rcx)
    popq %rbx
    .cfi_remember_state
    .cfi_def_cfa_offset 8
    ret

    /* Rare: the caller is a declared static function, whose own caller is the site.  Its frame is
     * described by the CFA of this trampoline (the stack pointer after our return) and %rbp, untouched. */
.Lsite_static:
    .cfi_restore_state
    subq $192, %rsp
    /* Absolute offsets, not .cfi_adjust_cfa_offset: LLVM's integrated assembler adjusts from the offset
     * before .cfi_restore_state (8, after the ret), not from the restored one (16). */
    .cfi_def_cfa_offset 208
    save_args 0, 64
    movq %r11, 48(%rsp)
    movq %rax, %rdi                             /* pc */
    leaq 208(%rsp), %rsi                        /* sp: 192 + the saved %rbx + our return address */
    movq %rbp, %rdx                             /* bp */
    call __mallochooks_static_site
    load_args 0, 64
    movq 48(%rsp), %r11
    addq $192, %rsp
    .cfi_def_cfa_offset 16
    jmp .Lsite_set

    /* An exception leaves the declared function (C++): restore the site as the normal path does, then
     * go on unwinding.  %rax holds the exception object. */
.Lsite_landing:
    movq __mallochooks_alloc_site@gottpoff(%rip), %rcx
    movq %rbx, %fs:(%rcx)
    movq %rax, %rdi
    call _Unwind_Resume@PLT
    .cfi_endproc
    .size __mallochooks_site_trampoline, .-__mallochooks_site_trampoline

    /* The call-site table of the C personality: the one call that can throw lands on the cleanup. */
    .section .gcc_except_table,"a",@progbits
.Lsite_lsda:
    .byte 0xff                                  /* @LPStart: the function's start */
    .byte 0xff                                  /* no type table */
    .byte 0x1                                   /* call sites in uleb128 */
    .uleb128 .Lsite_cs_end - .Lsite_cs_begin
.Lsite_cs_begin:
    .uleb128 .Lsite_call_begin - .Lsite_begin
    .uleb128 .Lsite_call_end - .Lsite_call_begin
    .uleb128 .Lsite_landing - .Lsite_begin
    .uleb128 0                                  /* a cleanup */
.Lsite_cs_end:

    .hidden DW.ref.__gcc_personality_v0
    .weak DW.ref.__gcc_personality_v0
    .section .data.rel.local.DW.ref.__gcc_personality_v0,"awG",@progbits,DW.ref.__gcc_personality_v0,comdat
    .balign 8
    .type DW.ref.__gcc_personality_v0, @object
    .size DW.ref.__gcc_personality_v0, 8
DW.ref.__gcc_personality_v0:
    .quad __gcc_personality_v0

/* ---- suballocators ---------------------------------------------------------------------------------- */
/* A frame with a frame pointer holding struct mallochooks_suballoc_call (shim_trampolines.h) at %rsp:
 * ints 0..47, vectors 48..175, target 176, plan 184, site 192, result 200.  Nothing to restore when an
 * exception passes: no personality. */
    .text
    .p2align 4
    .globl __mallochooks_suballoc_trampoline
    .hidden __mallochooks_suballoc_trampoline
    .type __mallochooks_suballoc_trampoline, @function
__mallochooks_suballoc_trampoline:
    .cfi_startproc
    pushq %rbp
    .cfi_def_cfa_offset 16
    .cfi_offset %rbp, -16
    movq %rsp, %rbp
    .cfi_def_cfa_register %rbp
    subq $208, %rsp
    save_args 0, 48
    movq %r11, 176(%rsp)
    movq %r10, 184(%rsp)
    movq %rsp, %rdi                             /* the record */
    movq 8(%rbp), %rsi                          /* the call site */
    leaq 16(%rbp), %rdx                         /* the caller's sp after our return */
    movq 0(%rbp), %rcx                          /* the caller's rbp */
    call __mallochooks_suballoc_enter
    load_args 0, 48
    call *176(%rsp)
    movq %rax, 200(%rsp)
    movaps %xmm0, 48(%rsp)
    movq %rsp, %rdi
    call __mallochooks_suballoc_leave
    movq 200(%rsp), %rax
    movaps 48(%rsp), %xmm0
    leave
    .cfi_def_cfa %rsp, 8
    ret
    .cfi_endproc
    .size __mallochooks_suballoc_trampoline, .-__mallochooks_suballoc_trampoline

#endif

    .section .note.GNU-stack,"",@progbits
