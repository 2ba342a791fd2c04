namespace CrmEngine.Templates;

/// <summary>
/// The templates folder and its file convention: <c>&lt;name&gt;.subject.txt</c>, <c>&lt;name&gt;.html</c>,
/// <c>&lt;name&gt;.txt</c> at the top; layouts in <c>_layouts/</c>, partials in <c>_partials/</c>. Every path handed out
/// is inside the folder after symbolic links are followed.
/// </summary>
internal sealed class TemplateFolder
{
    public const string LayoutsFolder = "_layouts";
    public const string PartialsFolder = "_partials";

    public TemplateFolder(string directory)
    {
        Directory = Path.GetFullPath(directory);
    }

    public string Directory { get; }

    public static string SubjectFile(string name) => name + ".subject.txt";

    public static string HtmlFile(string name) => name + ".html";

    public static string TextFile(string name) => name + ".txt";

    /// <summary>Template names found in the folder (a name exists when any of its three files does).</summary>
    public IReadOnlyList<string> Names()
    {
        if (!System.IO.Directory.Exists(Directory))
        {
            return [];
        }

        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var file in System.IO.Directory.EnumerateFiles(Directory, "*", SearchOption.TopDirectoryOnly))
        {
            var fileName = Path.GetFileName(file);
            if (fileName.StartsWith('.') || fileName.StartsWith('_'))
            {
                continue;
            }

            if (fileName.EndsWith(".subject.txt", StringComparison.Ordinal))
            {
                names.Add(fileName[..^".subject.txt".Length]);
            }
            else if (fileName.EndsWith(".html", StringComparison.Ordinal))
            {
                names.Add(fileName[..^".html".Length]);
            }
            else if (fileName.EndsWith(".txt", StringComparison.Ordinal))
            {
                names.Add(fileName[..^".txt".Length]);
            }
        }

        return names.ToList();
    }

    /// <summary>True for a name a template may have: letters, digits, '-', '_' and '.', not starting with '_' or '.'.</summary>
    public static bool IsValidName(string name) =>
        name.Length is > 0 and <= 200 && name[0] is not ('_' or '.') && name.All(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.') && !name.Contains("..", StringComparison.Ordinal);

    /// <summary>The full path of a top-level template file, or null when the name is not acceptable.</summary>
    public string? TopLevel(string fileName) => Resolve(fileName, out _);

    /// <summary>
    /// Resolves a layout or partial reference (<c>footer</c>, <c>footer.html</c>, <c>shop/footer</c>) in
    /// <paramref name="folder"/> for the body kind (<c>.html</c> or <c>.txt</c>). Throws with the reason when the
    /// reference would leave the templates folder.
    /// </summary>
    public string ResolveShared(string folder, string reference, string extension)
    {
        if (string.IsNullOrWhiteSpace(reference))
        {
            throw new TemplateAccessException("an empty template name");
        }

        if (Path.IsPathRooted(reference) || reference.Contains(':', StringComparison.Ordinal) || reference.StartsWith('~'))
        {
            throw new TemplateAccessException($"'{reference}' is an absolute path; name a file inside {folder}/");
        }

        var parts = reference.Replace('\\', '/').Split('/');
        if (parts.Any(p => p is ".." or "." or ""))
        {
            throw new TemplateAccessException($"'{reference}' leaves {folder}/ ('..', '.' and empty path parts are refused)");
        }

        var relative = Path.Combine([folder, .. parts]);
        if (!Path.HasExtension(parts[^1]))
        {
            relative += extension;
        }

        return Resolve(relative, out var reason) ?? throw new TemplateAccessException($"'{reference}' {reason}");
    }

    private string? Resolve(string relative, out string reason)
    {
        var full = Path.GetFullPath(Path.Combine(Directory, relative));
        if (!IsInside(full, Directory))
        {
            reason = "is outside the templates folder";
            return null;
        }

        // A symbolic link (on the file or on any folder on the way) must not lead out of the folder either.
        string real, realRoot;
        try
        {
            real = RealPath(full);
            realRoot = RealPath(Directory);
        }
        catch (IOException)
        {
            reason = "is a link that cannot be followed (a loop?)";
            return null;
        }

        if (!IsInside(real, realRoot))
        {
            reason = "is a link that leads outside the templates folder";
            return null;
        }

        reason = "";
        return full;
    }

    private static bool IsInside(string path, string root)
    {
        var rootWithSlash = root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar;
        return path.StartsWith(rootWithSlash, StringComparison.Ordinal);
    }

    /// <summary>The path with every symbolic link on the way replaced by its final target.</summary>
    internal static string RealPath(string path)
    {
        var full = Path.GetFullPath(path);
        var root = Path.GetPathRoot(full) ?? "/";
        var current = root;
        foreach (var part in full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            current = Path.Combine(current, part);
            FileSystemInfo info = System.IO.Directory.Exists(current) ? new DirectoryInfo(current) : new FileInfo(current);
            if (info.Exists && info.LinkTarget is not null)
            {
                var target = info.ResolveLinkTarget(returnFinalTarget: true);
                current = target is null ? current : RealPath(target.FullName);
            }
        }

        return current;
    }
}

/// <summary>An include or layout reference refused because it would read outside the templates folder.</summary>
internal sealed class TemplateAccessException(string message) : Exception(message);
