using CrmEngine.Abstractions.Plugins;
using Microsoft.Extensions.Configuration;

namespace CrmEngine.PluginHost;

/// <summary>One plugin folder as found on disk, with its verdict once resolved.</summary>
internal sealed class PluginCandidate(string folder)
{
    public string Folder { get; } = folder;
    public PluginManifest? Manifest { get; set; }
    public PluginState? State { get; private set; }
    public string? Reason { get; private set; }

    public string Id => Manifest?.Id ?? Path.GetFileName(Folder);
    public string Name => Manifest?.Name ?? Id;
    public string? Version => Manifest?.Version.ToString();
    public bool IsRefused => State is not null;

    /// <summary>Sets the verdict; the first reason found wins.</summary>
    public void Refuse(PluginState state, string reason)
    {
        if (State is null)
        {
            State = state;
            Reason = reason;
        }
    }

    public PluginInfo ToInfo(PluginState state, string? reason) => new(Id, Name, Version, Folder, state, reason);
}

/// <summary>
/// Finds plugin folders and decides, without loading any code, which can run and in which order:
/// manifest, duplicate ids, configuration (Enabled), SDK range, entry assembly present,
/// dependencies present and in range, no cycles. Load order is topological (ties by id).
/// </summary>
internal static class PluginResolver
{
    public static List<PluginCandidate> Discover(IEnumerable<string> directories)
    {
        var found = new List<PluginCandidate>();
        foreach (var dir in directories)
        {
            if (!Directory.Exists(dir))
            {
                continue;
            }

            foreach (var folder in Directory.GetDirectories(dir).Order(StringComparer.Ordinal))
            {
                var candidate = new PluginCandidate(folder);
                var manifestPath = Path.Combine(folder, PluginManifest.FileName);
                if (!File.Exists(manifestPath))
                {
                    candidate.Refuse(PluginState.NotSupported, $"no {PluginManifest.FileName} in folder {folder}");
                }
                else
                {
                    try
                    {
                        candidate.Manifest = PluginManifestReader.Read(manifestPath);
                    }
                    catch (PluginManifestException ex)
                    {
                        candidate.Refuse(PluginState.NotSupported, ex.Message);
                    }
                }

                found.Add(candidate);
            }
        }

        return found;
    }

    /// <summary>
    /// Resolves the candidates in place and returns them: first the runnable ones in load order,
    /// then the refused ones (ordered by id).
    /// </summary>
    /// Optional <c>entryCheck</c>: a check of the entry assembly (inspect mode) returning a reason or null.
    public static List<PluginCandidate> Resolve(List<PluginCandidate> candidates, IConfiguration configuration, SemVersion sdkVersion,
        Func<PluginCandidate, string?>? entryCheck = null)
    {
        // Duplicate ids: none of them is loaded, every folder is named.
        foreach (var group in candidates.Where(c => c.Manifest is not null)
                     .GroupBy(c => c.Id, StringComparer.OrdinalIgnoreCase).Where(g => g.Count() > 1))
        {
            foreach (var c in group)
            {
                var others = string.Join(", ", group.Where(o => o != c).Select(o => o.Folder));
                c.Refuse(PluginState.NotSupported, $"duplicate plugin id '{c.Id}': also declared in {others}");
            }
        }

        foreach (var c in candidates.Where(c => !c.IsRefused))
        {
            var m = c.Manifest!;
            var enabledKey = $"Plugins:{m.Id}:Enabled";
            var enabled = configuration[enabledKey];
            if (!string.IsNullOrWhiteSpace(enabled))
            {
                if (!bool.TryParse(enabled, out var on))
                {
                    c.Refuse(PluginState.NotSupported, $"configuration {enabledKey} = '{enabled}' is not true or false");
                    continue;
                }

                if (!on)
                {
                    c.Refuse(PluginState.Disabled, $"disabled in configuration ({enabledKey} = false)");
                    continue;
                }
            }

            if (!m.Sdk.Contains(sdkVersion))
            {
                c.Refuse(PluginState.NotSupported, $"supports SDK {m.Sdk} but this engine has SDK {sdkVersion}");
                continue;
            }

            if (!File.Exists(Path.Combine(c.Folder, m.EntryAssembly)))
            {
                c.Refuse(PluginState.NotSupported, $"entry assembly {m.EntryAssembly} not found in {c.Folder}");
                continue;
            }

            if (entryCheck?.Invoke(c) is { } problem)
            {
                c.Refuse(PluginState.NotSupported, problem);
            }
        }

        var byId = candidates.Where(c => c.Manifest is not null)
            .GroupBy(c => c.Id, StringComparer.OrdinalIgnoreCase)
            .Where(g => g.Count() == 1)
            .ToDictionary(g => g.Key, g => g.Single(), StringComparer.OrdinalIgnoreCase);

        var order = new List<PluginCandidate>();
        var placed = new HashSet<PluginCandidate>();
        var pending = candidates.Where(c => !c.IsRefused).OrderBy(c => c.Id, StringComparer.Ordinal).ToList();

        bool Decided(PluginCandidate c) => c.IsRefused || placed.Contains(c);

        while (pending.Count > 0)
        {
            var progress = false;
            foreach (var c in pending.ToList())
            {
                var deps = c.Manifest!.Dependencies;
                if (deps.Any(d => byId.TryGetValue(d.Id, out var dc) && !Decided(dc)))
                {
                    continue;
                }

                foreach (var d in deps)
                {
                    if (!byId.TryGetValue(d.Id, out var dc))
                    {
                        var dup = candidates.Any(o => o.Manifest is not null && string.Equals(o.Id, d.Id, StringComparison.OrdinalIgnoreCase));
                        c.Refuse(PluginState.NotSupported, dup
                            ? $"dependency {d.Id} is not active (its id is declared twice)"
                            : $"dependency {d.Id} ({d.Range}) is missing");
                        break;
                    }

                    if (dc.IsRefused)
                    {
                        c.Refuse(dc.State == PluginState.Disabled ? PluginState.Disabled : PluginState.NotSupported,
                            $"dependency {dc.Id} is not active ({dc.State})");
                        break;
                    }

                    if (!d.Range.Contains(dc.Manifest!.Version))
                    {
                        c.Refuse(PluginState.NotSupported, $"needs {d.Id} {d.Range} but found {d.Id} {dc.Manifest.Version}");
                        break;
                    }
                }

                if (!c.IsRefused)
                {
                    order.Add(c);
                    placed.Add(c);
                }

                pending.Remove(c);
                progress = true;
            }

            if (!progress)
            {
                // Everything left waits on something left: refuse the members of each cycle by name;
                // the loop then refuses those that only depend on a cycle.
                var cycles = FindCycles(pending, byId);
                foreach (var cycle in cycles)
                {
                    var text = string.Join(" -> ", cycle.Append(cycle[0]).Select(c => c.Id));
                    foreach (var c in cycle)
                    {
                        c.Refuse(PluginState.NotSupported, $"dependency cycle: {text}");
                    }
                }

                pending.RemoveAll(c => c.IsRefused);
                if (cycles.Count == 0)
                {
                    foreach (var c in pending)
                    {
                        c.Refuse(PluginState.NotSupported, "dependencies cannot be ordered");
                    }

                    pending.Clear();
                }
            }
        }

        return order.Concat(candidates.Where(c => c.IsRefused).OrderBy(c => c.Id, StringComparer.Ordinal)).ToList();
    }

    /// <summary>Strongly connected components (Tarjan) of size &gt; 1 among <paramref name="nodes"/>, each as a cycle path.</summary>
    private static List<List<PluginCandidate>> FindCycles(List<PluginCandidate> nodes, Dictionary<string, PluginCandidate> byId)
    {
        var set = nodes.ToHashSet();
        var index = new Dictionary<PluginCandidate, int>();
        var low = new Dictionary<PluginCandidate, int>();
        var stack = new Stack<PluginCandidate>();
        var onStack = new HashSet<PluginCandidate>();
        var result = new List<List<PluginCandidate>>();
        var next = 0;

        IEnumerable<PluginCandidate> Edges(PluginCandidate c) =>
            c.Manifest!.Dependencies.Select(d => byId.GetValueOrDefault(d.Id)).OfType<PluginCandidate>().Where(set.Contains);

        void Visit(PluginCandidate v)
        {
            index[v] = low[v] = next++;
            stack.Push(v);
            onStack.Add(v);
            foreach (var w in Edges(v))
            {
                if (!index.ContainsKey(w))
                {
                    Visit(w);
                    low[v] = Math.Min(low[v], low[w]);
                }
                else if (onStack.Contains(w))
                {
                    low[v] = Math.Min(low[v], index[w]);
                }
            }

            if (low[v] == index[v])
            {
                var scc = new List<PluginCandidate>();
                PluginCandidate w;
                do
                {
                    w = stack.Pop();
                    onStack.Remove(w);
                    scc.Add(w);
                }
                while (w != v);

                if (scc.Count > 1)
                {
                    result.Add(CyclePath(scc, Edges));
                }
            }
        }

        foreach (var n in nodes.OrderBy(n => n.Id, StringComparer.Ordinal))
        {
            if (!index.ContainsKey(n))
            {
                Visit(n);
            }
        }

        return result;
    }

    /// <summary>Orders the members of a strongly connected component as a walk that follows dependencies where it can.</summary>
    private static List<PluginCandidate> CyclePath(List<PluginCandidate> scc, Func<PluginCandidate, IEnumerable<PluginCandidate>> edges)
    {
        var members = scc.ToHashSet();
        var start = scc.OrderBy(c => c.Id, StringComparer.Ordinal).First();
        var path = new List<PluginCandidate> { start };
        var seen = new HashSet<PluginCandidate> { start };
        var current = start;
        while (true)
        {
            var step = edges(current).Where(members.Contains).Where(n => !seen.Contains(n))
                .OrderBy(n => n.Id, StringComparer.Ordinal).FirstOrDefault();
            if (step is null)
            {
                break;
            }

            path.Add(step);
            seen.Add(step);
            current = step;
        }

        // Any member the walk did not reach is still named.
        path.AddRange(scc.Where(c => !seen.Contains(c)).OrderBy(c => c.Id, StringComparer.Ordinal));
        return path;
    }
}
