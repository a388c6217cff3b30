/** Whether a test's external tools are installed, looked up where Debian puts them. */

/** The directories a Debian package installs commands into. */
const TOOL_DIRS = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/** True when `tool` is a file in one of {@link TOOL_DIRS}. */
export function installedTool(tool: string): boolean {
  return TOOL_DIRS.some((dir) => {
    try {
      return Deno.statSync(`${dir}/${tool}`).isFile;
    } catch {
      return false;
    }
  });
}
