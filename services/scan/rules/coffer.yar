// Coffer's shipped YARA-X ruleset. Every rule carries `verdict` ("infected" or "suspicious") and
// `description` meta. The scanner feeds files in blocks, so rules use patterns only: no modules,
// no uint16()/filesize (undefined in block mode); a magic number is `$x at 0`.
// Bump rules/VERSION when a rule changes: files scanned under an older ruleset are re-queued.

rule eicar_test_file {
  meta:
    verdict = "infected"
    description = "EICAR anti-virus test file"
  strings:
    // The EICAR string as hex, so this file is not itself flagged by anti-virus tools.
    $eicar = { 58 35 4F 21 50 25 40 41 50 5B 34 5C 50 5A 58 35 34 28 50 5E 29 37 43 43 29 37
               7D 24 45 49 43 41 52 2D 53 54 41 4E 44 41 52 44 2D 41 4E 54 49 56 49 52 55 53
               2D 54 45 53 54 2D 46 49 4C 45 21 24 48 2B 48 2A }
  condition:
    $eicar
}

rule executable_pe {
  meta:
    verdict = "suspicious"
    description = "Windows PE executable or DLL"
  strings:
    $mz = { 4D 5A }
    // "PE\0\0" then the machine: i386, amd64, arm64, arm
    $pe = { 50 45 00 00 ( 4C 01 | 64 86 | 64 AA | C4 01 ) }
  condition:
    $mz at 0 and $pe in (0..4096)
}

rule executable_elf {
  meta:
    verdict = "suspicious"
    description = "ELF executable or shared object"
  strings:
    $elf = { 7F 45 4C 46 ( 01 | 02 ) ( 01 | 02 ) 01 }
  condition:
    $elf at 0
}

rule executable_macho {
  meta:
    verdict = "suspicious"
    description = "Mach-O executable (thin or universal)"
  strings:
    $m32 = { CE FA ED FE }
    $m64 = { CF FA ED FE }
    $m32be = { FE ED FA CE }
    $m64be = { FE ED FA CF }
    // A universal binary: CAFEBABE then a small architecture count (a Java class has a version).
    $fat = { CA FE BA BE 00 00 00 ( 01 | 02 | 03 | 04 ) }
  condition:
    $m32 at 0 or $m64 at 0 or $m32be at 0 or $m64be at 0 or $fat at 0
}

rule office_vba_macros {
  meta:
    verdict = "suspicious"
    description = "Office document with VBA macros"
  strings:
    $zip = { 50 4B 03 04 }
    // OOXML keeps macros in a part named vbaProject.bin; zip entry names are stored in clear.
    $ooxml = "vbaProject.bin" nocase
    $ole = { D0 CF 11 E0 A1 B1 1A E1 }
    // Legacy OLE2 documents name their macro storage _VBA_PROJECT (UTF-16LE directory entries).
    $vba = "_VBA_PROJECT" wide
    $attr = "Attribute VB_Name" ascii
  condition:
    ($zip at 0 and $ooxml) or ($ole at 0 and ($vba or $attr))
}

rule pdf_active_content {
  meta:
    verdict = "suspicious"
    description = "PDF with JavaScript or a launch action"
  strings:
    $pdf = "%PDF-"
    $js1 = "/JavaScript"
    $js2 = /\/JS[\s\/\(<\[]/
    $launch = "/Launch"
  condition:
    $pdf in (0..1024) and ($js1 or $js2 or $launch)
}

rule html_smuggling {
  meta:
    verdict = "suspicious"
    description = "HTML that assembles a file in the browser and offers it for download"
  strings:
    $html1 = "<html" nocase
    $html2 = "<script" nocase
    $blob = /new\s+Blob\s*\(/
    $decode1 = "atob(" 
    $decode2 = "Uint8Array"
    $save1 = "msSaveOrOpenBlob"
    $save2 = "createObjectURL"
    $save3 = /\.download\s*=/
  condition:
    ($html1 or $html2) and $blob and ($decode1 or $decode2) and ($save1 or $save2 or $save3)
}
