using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Scriban;
using Scriban.Parsing;
using Scriban.Runtime;
using Scriban.Syntax;

namespace CrmEngine.Templates;

/// <summary>A problem in a template file, as <c>file:line:column: message</c> (line and column from 1; 0 when unknown).</summary>
public sealed record TemplateProblem(string File, int Line, int Column, string Message)
{
    public override string ToString() => Line > 0 ? $"{File}:{Line}:{Column}: {Message}" : $"{File}: {Message}";
}

/// <summary>
/// The templates folder: parsed templates cached by file version (size and write time), re-read when a file
/// changes (file-system events plus a periodic version check), rendered under limits. A file that no longer
/// parses is refused with file:line:column logged, and the version parsed before stays in use.
/// </summary>
public sealed class MailTemplates : IMailTemplates, IDisposable
{
    private const long MaxFileBytes = 1024 * 1024;

    private readonly TemplateFolder _folder;
    private readonly TemplatesOptions _options;
    private readonly ILogger? _logger;
    private readonly ScriptObject _builtins = TemplateFunctions.CreateBuiltins();
    private readonly ConcurrentDictionary<string, CachedFile> _cache = new(StringComparer.Ordinal);
    private readonly object _loadGate = new();
    private ImmutableDictionary<string, TemplateProblem> _refused = ImmutableDictionary<string, TemplateProblem>.Empty.WithComparers(StringComparer.Ordinal);
    private long _generation;
    private FileSystemWatcher? _watcher;
    private Timer? _debounce;

    public MailTemplates(string directory, TemplatesOptions? options = null, ILogger<MailTemplates>? logger = null)
    {
        _folder = new TemplateFolder(directory);
        _options = options ?? new TemplatesOptions();
        _logger = logger;
    }

    /// <summary>The templates folder (full path).</summary>
    public string Directory => _folder.Directory;

    internal TemplatesOptions Options => _options;

    internal ScriptObject Builtins => _builtins;

    internal TemplateFolder Folder => _folder;

    /// <summary>Files refused at their last read (by display path), with the problem; the previous version of each stays in use.</summary>
    public IReadOnlyDictionary<string, TemplateProblem> RefusedFiles => _refused;

    /// <summary>Template names in the folder.</summary>
    public IReadOnlyList<string> Names() => _folder.Names();

    public bool Exists(string name) =>
        TemplateFolder.IsValidName(name)
        && PartPaths(name).All(p => p is not null && File.Exists(p));

    public RenderedMail Render(string name, TemplateModel model, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!TemplateFolder.IsValidName(name ?? ""))
        {
            throw new TemplateRenderException($"'{name}' is not a template name (letters, digits, '-', '_' and '.'; not starting with '_')");
        }

        var paths = PartPaths(name!);
        if (paths.Any(p => p is null))
        {
            throw new TemplateRenderException($"template '{name}' resolves outside {Directory}", Display(Path.Combine(Directory, name!)));
        }

        var culture = TemplateModelGlobals.CultureOf(model.Culture);
        using var budget = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        budget.CancelAfter(_options.Timeout);
        var globals = TemplateModelGlobals.Build(model, _builtins);

        var subject = RenderBody(paths[0]!, html: false, withLayout: false, globals, culture, budget.Token, cancellationToken);
        var html = RenderBody(paths[1]!, html: true, withLayout: true, globals, culture, budget.Token, cancellationToken);
        var text = RenderBody(paths[2]!, html: false, withLayout: true, globals, culture, budget.Token, cancellationToken);
        return new RenderedMail(OneLine(subject), html, text);
    }

    private string?[] PartPaths(string name) =>
    [
        Resolved("t|" + TemplateFolder.SubjectFile(name), () => _folder.TopLevel(TemplateFolder.SubjectFile(name))),
        Resolved("t|" + TemplateFolder.HtmlFile(name), () => _folder.TopLevel(TemplateFolder.HtmlFile(name))),
        Resolved("t|" + TemplateFolder.TextFile(name), () => _folder.TopLevel(TemplateFolder.TextFile(name))),
    ];

    /// <summary>A layout or partial reference resolved inside the folder (cached like <see cref="Resolved"/>); throws why not.</summary>
    private string ResolveShared(string folder, string reference, string extension)
    {
        string? error = null;
        var path = Resolved($"{folder}|{extension}|{reference}", () =>
        {
            try
            {
                return _folder.ResolveShared(folder, reference, extension);
            }
            catch (TemplateAccessException ex)
            {
                return "\0" + ex.Message;
            }
        });
        if (path is not null && path.StartsWith("\0", StringComparison.Ordinal))
        {
            error = path[2..];
        }

        return error is null ? path! : throw new TemplateAccessException(error);
    }

    /// <summary>
    /// Path resolution follows every symbolic link on the way (several file-system calls per part, layout and partial):
    /// cached, and done again when a file event arrived or after <see cref="TemplatesOptions.VersionCheckInterval"/>,
    /// like the parsed templates.
    /// </summary>
    private string? Resolved(string key, Func<string?> resolve)
    {
        var generation = Interlocked.Read(ref _generation);
        var now = Environment.TickCount64;
        if (_paths.TryGetValue(key, out var cached) && cached.Generation == generation
            && now - cached.CheckedAt < (long)_options.VersionCheckInterval.TotalMilliseconds)
        {
            return cached.Path;
        }

        var path = resolve();
        _paths[key] = new CachedPath(path, generation, now);
        return path;
    }

    private readonly ConcurrentDictionary<string, CachedPath> _paths = new(StringComparer.Ordinal);

    private sealed record CachedPath(string? Path, long Generation, long CheckedAt);

    /// <summary>A subject is one line: line breaks (and runs of spaces) from the template or the data become one space.</summary>
    private static string OneLine(string subject)
    {
        var builder = new StringBuilder(subject.Length);
        var space = false;
        foreach (var c in subject)
        {
            if (char.IsWhiteSpace(c) || char.IsControl(c))
            {
                space = builder.Length > 0;
                continue;
            }

            if (space)
            {
                builder.Append(' ');
                space = false;
            }

            builder.Append(c);
        }

        return builder.ToString();
    }

    private string RenderBody(string path, bool html, bool withLayout, ScriptObject globals, CultureInfo culture, CancellationToken budget, CancellationToken caller)
    {
        var template = GetTemplate(path);
        var context = new MailTemplateContext(_builtins, html, culture, this, _options, budget);
        var locals = new ScriptObject(StringComparer.Ordinal);
        context.PushGlobal(globals);
        context.PushGlobal(locals);
        var body = Run(context, template, Display(path), caller);
        if (!withLayout || !locals.TryGetValue("layout", out var layout) || layout is null || (layout is string s && s.Length == 0))
        {
            return body;
        }

        string layoutPath;
        try
        {
            layoutPath = ResolveShared(TemplateFolder.LayoutsFolder, layout.ToString() ?? "", html ? ".html" : ".txt");
        }
        catch (TemplateAccessException ex)
        {
            throw new TemplateRenderException($"{Display(path)}: layout {ex.Message}", Display(path));
        }

        // Variables the body set (title, preheader ...) stay visible to the layout; content is the body, already escaped.
        locals.Remove("layout");
        locals["content"] = html ? new RawHtml(body) : body;
        return Run(context, GetTemplate(layoutPath), Display(layoutPath), caller);
    }

    /// <summary>Renders a partial for <c>include</c> inside a running render (same variables, same limits).</summary>
    internal object RenderPartial(MailTemplateContext context, string name)
    {
        if (context.IncludeDepth >= _options.MaxIncludeDepth)
        {
            throw new ScriptRuntimeException(context.CurrentSpan, $"include '{name}': partials nested deeper than {_options.MaxIncludeDepth} (a partial including itself?)");
        }

        string path;
        try
        {
            path = ResolveShared(TemplateFolder.PartialsFolder, name, context.Html ? ".html" : ".txt");
        }
        catch (TemplateAccessException ex)
        {
            throw new ScriptRuntimeException(context.CurrentSpan, $"include {ex.Message}");
        }

        Template partial;
        try
        {
            partial = GetTemplate(path);
        }
        catch (TemplateRenderException ex)
        {
            throw new ScriptRuntimeException(context.CurrentSpan, $"include '{name}': {ex.Message}");
        }

        context.IncludeDepth++;
        try
        {
            var text = context.RenderTemplate(partial, new ScriptArray(), context.CurrentNode);
            return context.Html ? new RawHtml(text) : text;
        }
        finally
        {
            context.IncludeDepth--;
        }
    }

    private static string Run(MailTemplateContext context, Template template, string display, CancellationToken caller)
    {
        try
        {
            return template.Render(context);
        }
        catch (ScriptRuntimeException ex)
        {
            caller.ThrowIfCancellationRequested();
            var file = string.IsNullOrEmpty(ex.Span.FileName) ? display : ex.Span.FileName;
            var line = ex.Span.Start.Line + 1;
            var column = ex.Span.Start.Column + 1;
            var message = ex is ScriptAbortException || context.CancellationToken.IsCancellationRequested
                ? "the render took longer than its time budget and was stopped"
                : ex.OriginalMessage;
            throw new TemplateRenderException($"{file}:{line}:{column}: {message}", file, line, column, ex);
        }
        catch (OperationCanceledException ex)
        {
            caller.ThrowIfCancellationRequested();
            throw new TemplateRenderException($"{display}: the render took longer than its time budget and was stopped", display, inner: ex);
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or FormatException or InvalidCastException or OverflowException
                                       or IndexOutOfRangeException or NullReferenceException or NotSupportedException or System.Text.RegularExpressions.RegexMatchTimeoutException)
        {
            throw new TemplateRenderException($"{display}: {ex.Message}", display, inner: ex);
        }
    }

    /// <summary>The parsed template of a file, re-read when its version changed; the last good version when the file is refused.</summary>
    internal Template GetTemplate(string path)
    {
        var generation = Interlocked.Read(ref _generation);
        var now = Environment.TickCount64;
        if (_cache.TryGetValue(path, out var cached) && cached.Generation == generation
            && now - cached.CheckedAt < (long)_options.VersionCheckInterval.TotalMilliseconds && cached.Template is not null)
        {
            return cached.Template;
        }

        lock (_loadGate)
        {
            return Load(path, generation, now);
        }
    }

    private Template Load(string path, long generation, long now)
    {
        var display = Display(path);
        _cache.TryGetValue(path, out var cached);
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            _cache.TryRemove(path, out _);
            _refused = _refused.Remove(display);
            throw new TemplateRenderException($"{display} does not exist", display);
        }

        if (cached is not null && cached.Length == info.Length && cached.WriteTime == info.LastWriteTimeUtc)
        {
            _cache[path] = cached with { Generation = generation, CheckedAt = now };
            return cached.Template ?? throw cached.Problem!.ToException();
        }

        var (template, problem) = Parse(path, display, info);
        if (problem is not null)
        {
            _refused = _refused.SetItem(display, problem);
            _logger?.LogError("Template refused{Previous}: {Problem}", cached?.Template is null ? "" : ", the previous version stays in use", problem.ToString());
            // Remember the broken version so it is not parsed again on every render; keep the last good template.
            _cache[path] = new CachedFile(cached?.Template, problem, info.Length, info.LastWriteTimeUtc, generation, now);
            return cached?.Template ?? throw problem.ToException();
        }

        _refused = _refused.Remove(display);
        _cache[path] = new CachedFile(template, null, info.Length, info.LastWriteTimeUtc, generation, now);
        if (cached is not null)
        {
            _logger?.LogInformation("Template {File} reloaded", display);
        }

        return template!;
    }

    internal static (Template? Template, TemplateProblem? Problem) Parse(string path, string display, FileInfo info)
    {
        if (info.Length > MaxFileBytes)
        {
            return (null, new TemplateProblem(display, 0, 0, $"the file has {info.Length} bytes; a template may have at most {MaxFileBytes}"));
        }

        string text;
        try
        {
            text = ReadText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (null, new TemplateProblem(display, 0, 0, $"cannot be read: {ex.Message}"));
        }

        var template = Template.Parse(text, display, new ParserOptions { ExpressionDepthLimit = 100 }, new LexerOptions { Mode = ScriptMode.Default });
        if (template.HasErrors)
        {
            var first = template.Messages.First(m => m.Type == ParserMessageType.Error);
            return (null, new TemplateProblem(display, first.Span.Start.Line + 1, first.Span.Start.Column + 1, first.Message));
        }

        return (template, null);
    }

    private static string ReadText(string path)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return File.ReadAllText(path, Encoding.UTF8);
            }
            catch (IOException) when (attempt < 4)
            {
                // An editor may hold the file for a moment while saving.
                Thread.Sleep(50);
            }
        }
    }

    /// <summary>Reads every template file of the folder (top level, layouts, partials); returns the files refused.</summary>
    public IReadOnlyList<TemplateProblem> LoadAll()
    {
        var problems = new List<TemplateProblem>();
        foreach (var path in AllFiles())
        {
            try
            {
                GetTemplate(path);
            }
            catch (TemplateRenderException)
            {
                // Recorded in RefusedFiles and logged.
            }

            if (_refused.TryGetValue(Display(path), out var problem))
            {
                problems.Add(problem);
            }
        }

        return problems;
    }

    /// <summary>Every template file: top-level parts, then layouts and partials.</summary>
    internal IEnumerable<string> AllFiles()
    {
        if (!System.IO.Directory.Exists(Directory))
        {
            yield break;
        }

        foreach (var name in _folder.Names())
        {
            foreach (var path in PartPaths(name))
            {
                if (path is not null && File.Exists(path))
                {
                    yield return path;
                }
            }
        }

        foreach (var folder in new[] { TemplateFolder.LayoutsFolder, TemplateFolder.PartialsFolder })
        {
            var full = Path.Combine(Directory, folder);
            if (!System.IO.Directory.Exists(full))
            {
                continue;
            }

            foreach (var file in System.IO.Directory.EnumerateFiles(full, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                if (file.EndsWith(".html", StringComparison.Ordinal) || file.EndsWith(".txt", StringComparison.Ordinal))
                {
                    var relative = Path.GetRelativePath(Directory, file);
                    if (_folder.TopLevel(relative) is { } safe)
                    {
                        yield return safe;
                    }
                }
            }
        }
    }

    /// <summary>Starts watching the folder: a changed file is re-read (and refused or swapped in) shortly after it is saved.</summary>
    public void Watch()
    {
        lock (_loadGate)
        {
            if (_watcher is not null)
            {
                return;
            }

            System.IO.Directory.CreateDirectory(Directory);
            _debounce = new Timer(_ => Refresh(), null, Timeout.Infinite, Timeout.Infinite);
            _watcher = new FileSystemWatcher(Directory)
            {
                IncludeSubdirectories = true,
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.DirectoryName,
            };
            FileSystemEventHandler poke = (_, _) => Poke();
            _watcher.Changed += poke;
            _watcher.Created += poke;
            _watcher.Deleted += poke;
            _watcher.Renamed += (_, _) => Poke();
            _watcher.Error += (_, _) => Poke();
            _watcher.EnableRaisingEvents = true;
        }
    }

    private void Poke()
    {
        // Renders from now on look at the files again; the debounced refresh re-reads them all (and logs refusals).
        Interlocked.Increment(ref _generation);
        _debounce?.Change(_options.ReloadDebounce, Timeout.InfiniteTimeSpan);
    }

    private void Refresh()
    {
        try
        {
            Interlocked.Increment(ref _generation);
            LoadAll();
        }
#pragma warning disable CA1031 // the watcher must survive anything a reload meets
        catch (Exception ex)
        {
            _logger?.LogError(ex, "Re-reading the templates folder {Directory} failed", Directory);
        }
#pragma warning restore CA1031
    }

    /// <summary>The path as messages show it: relative to the folder's parent (<c>templates/welcome.html</c>).</summary>
    internal string Display(string path) =>
        Path.GetRelativePath(Path.GetDirectoryName(Directory) ?? Directory, path).Replace('\\', '/');

    public void Dispose()
    {
        lock (_loadGate)
        {
            _watcher?.Dispose();
            _debounce?.Dispose();
            _watcher = null;
        }
    }

    private sealed record CachedFile(Template? Template, TemplateProblem? Problem, long Length, DateTime WriteTime, long Generation, long CheckedAt);
}

internal static class TemplateProblemExtensions
{
    public static TemplateRenderException ToException(this TemplateProblem problem) =>
        new(problem.ToString(), problem.File, problem.Line, problem.Column);
}
