using System.Collections.Immutable;
using System.Globalization;
using CrmEngine.Abstractions.Pipeline;
using CrmEngine.Abstractions.Rules;
using CrmEngine.Rules.Scripting;
using Microsoft.Extensions.Logging;

namespace CrmEngine.Rules;

public enum RuleKind { Segment, Event }

/// <summary>A script from the rules folder that compiled, with what its header declares.</summary>
public sealed record LoadedRule(RuleKind Kind, string Name, IRuleScript Script, EventBinding? Binding)
{
    public string Hash => Script.Hash;
}

/// <summary>What an event rule's header binds it to: <c>// @entity customer</c>, <c>// @stage pre</c>, <c>// @order 10</c>.</summary>
public sealed record EventBinding(string Entity, PipelineStage Stage, int Order);

/// <summary>
/// The scripts of the rules folder: <c>segments/*.js</c> and <c>events/*.js</c>. Each is compiled on
/// load; a script that does not compile is refused with file:line:column and the previous version
/// of it (if any) stays active. With <see cref="Watch"/>, saving a file reloads it after a short
/// debounce and swaps it in atomically.
/// </summary>
public sealed class RuleCatalog : IDisposable
{
    public static readonly IReadOnlyList<string> SegmentParameters = ["customer"];
    public static readonly IReadOnlyList<string> EventParameters = ["record", "event", "api"];

    private readonly IRuleEngine _engine;
    private readonly ILogger? _logger;
    private readonly object _gate = new();
    private ImmutableDictionary<(RuleKind, string), LoadedRule> _rules = ImmutableDictionary<(RuleKind, string), LoadedRule>.Empty;
    private ImmutableDictionary<string, RuleError> _refused = ImmutableDictionary<string, RuleError>.Empty;
    private FileSystemWatcher? _watcher;
    private Timer? _debounce;
    private TimeSpan _debounceDelay;

    public RuleCatalog(IRuleEngine engine, string directory, ILogger<RuleCatalog>? logger = null)
    {
        _engine = engine ?? throw new ArgumentNullException(nameof(engine));
        Directory = Path.GetFullPath(directory);
        _logger = logger;
    }

    public string Directory { get; }

    /// <summary>Raised after a reload changed something: (kind, name, new rule or null when removed).</summary>
    public event Action<RuleKind, string, LoadedRule?>? Changed;

    /// <summary>Raised when a file was refused (the previous version, if any, stays active).</summary>
    public event Action<string, RuleError>? Refused;

    public IReadOnlyList<LoadedRule> Segments => _rules.Values.Where(r => r.Kind == RuleKind.Segment).OrderBy(r => r.Name, StringComparer.Ordinal).ToList();

    public IReadOnlyList<LoadedRule> Events => _rules.Values.Where(r => r.Kind == RuleKind.Event).OrderBy(r => r.Name, StringComparer.Ordinal).ToList();

    /// <summary>Files refused at their last load, by path, with the error.</summary>
    public IReadOnlyDictionary<string, RuleError> RefusedFiles => _refused;

    public LoadedRule? Find(RuleKind kind, string name) => _rules.GetValueOrDefault((kind, name));

    /// <summary>Scans the folder and applies every difference. Returns the refusals of this scan.</summary>
    public IReadOnlyList<RuleError> Reload()
    {
        var changes = new List<(RuleKind, string, LoadedRule?)>();
        var refusals = new List<(string, RuleError)>();
        lock (_gate)
        {
            var seen = new HashSet<(RuleKind, string)>();
            var next = _rules;
            var refused = _refused;
            foreach (var (kind, sub) in new[] { (RuleKind.Segment, "segments"), (RuleKind.Event, "events") })
            {
                var folder = Path.Combine(Directory, sub);
                if (!System.IO.Directory.Exists(folder))
                {
                    continue;
                }

                foreach (var file in System.IO.Directory.EnumerateFiles(folder, "*.js", SearchOption.TopDirectoryOnly).Order(StringComparer.Ordinal))
                {
                    var name = Path.GetFileNameWithoutExtension(file);
                    var key = (kind, name);
                    seen.Add(key);
                    var code = ReadText(file);
                    if (code is null)
                    {
                        continue;
                    }

                    var relative = Path.GetRelativePath(Path.GetDirectoryName(Directory) ?? Directory, file).Replace('\\', '/');
                    if (next.TryGetValue(key, out var current) && current.Script.Code == code)
                    {
                        refused = refused.Remove(relative);
                        continue;
                    }

                    try
                    {
                        var rule = Load(kind, name, code, relative);
                        next = next.SetItem(key, rule);
                        refused = refused.Remove(relative);
                        changes.Add((kind, name, rule));
                    }
                    catch (RuleCompileException ex)
                    {
                        refused = refused.SetItem(relative, ex.Error);
                        refusals.Add((relative, ex.Error));
                    }
                }
            }

            foreach (var gone in next.Keys.Where(k => !seen.Contains(k)).ToList())
            {
                next = next.Remove(gone);
                changes.Add((gone.Item1, gone.Item2, null));
            }

            _rules = next;
            _refused = refused;
        }

        foreach (var (path, error) in refusals)
        {
            _logger?.LogError("Rule script refused, the previous version stays active: {Error}", error.ToString());
            Refused?.Invoke(path, error);
        }

        foreach (var (kind, name, rule) in changes)
        {
            _logger?.LogInformation("Rule {Kind} '{Name}' {What} (version {Hash})", kind, name, rule is null ? "removed" : "loaded", rule?.Hash);
            Changed?.Invoke(kind, name, rule);
        }

        return refusals.Select(r => r.Item2).ToList();
    }

    /// <summary>Compiles one script of the given kind (also used by dry runs of files outside the folder).</summary>
    public LoadedRule Load(RuleKind kind, string name, string code, string? path)
    {
        var script = _engine.Compile(new RuleSource(name, code, path), kind == RuleKind.Segment ? SegmentParameters : EventParameters);
        return new LoadedRule(kind, name, script, kind == RuleKind.Event ? Bind(path ?? name, code) : null);
    }

    private static EventBinding Bind(string display, string code)
    {
        var header = ScriptHeader.Parse(code);
        if (!header.TryGetValue("entity", out var entity) || entity.Value is not ("customer" or "order" or "activity"))
        {
            throw ScriptHeader.Bad(display, header.TryGetValue("entity", out var e) ? e.Line : 1, "@entity", entity.Value ?? "",
                "customer, order or activity (an event rule must declare // @entity ...)");
        }

        if (!header.TryGetValue("stage", out var stage))
        {
            throw ScriptHeader.Bad(display, 1, "@stage", "", "validate, pre, post or async (an event rule must declare // @stage ...)");
        }

        PipelineStage parsed = stage.Value.ToLowerInvariant() switch
        {
            "validate" => PipelineStage.Validate,
            "pre" or "preoperation" => PipelineStage.PreOperation,
            "post" or "postoperation" => PipelineStage.PostOperation,
            "async" => PipelineStage.Async,
            _ => throw ScriptHeader.Bad(display, stage.Line, "@stage", stage.Value, "validate, pre, post or async"),
        };

        var order = 0;
        if (header.TryGetValue("order", out var o) && !int.TryParse(o.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out order))
        {
            throw ScriptHeader.Bad(display, o.Line, "@order", o.Value, "a whole number (lower runs first)");
        }

        return new EventBinding(entity.Value, parsed, order);
    }

    private static string? ReadText(string file)
    {
        for (var attempt = 0; attempt < 5; attempt++)
        {
            try
            {
                return File.ReadAllText(file);
            }
            catch (IOException)
            {
                Thread.Sleep(50);
            }
            catch (UnauthorizedAccessException)
            {
                return null;
            }
        }

        return null;
    }

    /// <summary>Starts watching the folder: changes are reloaded <paramref name="debounce"/> after the last file event.</summary>
    public void Watch(TimeSpan debounce)
    {
        lock (_gate)
        {
            if (_watcher is not null)
            {
                return;
            }

            System.IO.Directory.CreateDirectory(Directory);
            _debounceDelay = debounce;
            _debounce = new Timer(_ => SafeReload(), null, Timeout.Infinite, Timeout.Infinite);
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

    private void Poke() => _debounce?.Change(_debounceDelay, Timeout.InfiniteTimeSpan);

    private void SafeReload()
    {
        try
        {
            Reload();
        }
#pragma warning disable CA1031 // the watcher must survive anything a reload meets
        catch (Exception ex)
        {
            _logger?.LogError(ex, "Reloading the rules folder {Directory} failed", Directory);
        }
#pragma warning restore CA1031
    }

    public void Dispose()
    {
        _watcher?.Dispose();
        _debounce?.Dispose();
    }
}
