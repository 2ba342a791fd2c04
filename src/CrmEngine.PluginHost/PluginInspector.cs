using System.Text.RegularExpressions;
using CrmEngine.Abstractions;
using CrmEngine.Abstractions.Plugins;
using McMaster.NETCore.Plugins;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CrmEngine.PluginHost;

/// <summary>
/// Inspect-only evaluation for <c>crm plugins list</c> when the service is not running: reads every
/// manifest, checks configuration, SDK ranges, dependencies and the entry type (loaded in a collectible
/// context, never instantiated). Nothing is started and the store is not touched. In the result,
/// <see cref="PluginState.Active"/> means "would be started"; a plugin can still fail at start.
/// </summary>
public static class PluginInspector
{
    /// <summary>Inspects the folders configured in section <c>PluginHost</c> of <paramref name="configuration"/>.</summary>
    public static IReadOnlyList<PluginInfo> Inspect(IConfiguration configuration, string? baseDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = new PluginHostOptions();
        configuration.GetSection(PluginHostOptions.Section).Bind(options);
        return Inspect(options.ResolveDirectories(baseDirectory ?? AppContext.BaseDirectory), configuration);
    }

    /// <summary>Inspects the plugin folders under <paramref name="directories"/> (absolute paths).</summary>
    public static IReadOnlyList<PluginInfo> Inspect(IEnumerable<string> directories, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var candidates = PluginResolver.Discover(directories);
        var resolved = PluginResolver.Resolve(candidates, configuration, SemVersion.Parse(CrmSdk.Version),
            c => PluginAssemblyLoader.CheckEntry(c.Folder, c.Manifest!.EntryAssembly));
        return resolved.Select(c => c.ToInfo(c.State ?? PluginState.Active, c.Reason)).ToList();
    }

    /// <summary>
    /// The ids in the manifests of the plugin folders configured in section <c>PluginHost</c> (manifests only:
    /// no assembly is loaded). Folders without a readable manifest count under their folder name.
    /// </summary>
    public static IReadOnlySet<string> DiscoverIds(IConfiguration configuration, string? baseDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = new PluginHostOptions();
        configuration.GetSection(PluginHostOptions.Section).Bind(options);
        return PluginResolver.Discover(options.ResolveDirectories(baseDirectory ?? AppContext.BaseDirectory))
            .Select(c => c.Id)
            .ToHashSet(StringComparer.OrdinalIgnoreCase);
    }

    /// <summary>
    /// Validates the options every plugin that would start binds from <c>Plugins:&lt;id&gt;</c>, as the host does at
    /// start: the entry type is created in a collectible context and its <c>ConfigureServices</c> runs against a
    /// throw-away service collection (nothing is started, no store). Returns (key, problem) pairs, the key naming the
    /// member when the validation names one (for example <c>Plugins:sample.welcome:DueInDays</c>).
    /// </summary>
    public static IReadOnlyList<(string Key, string Problem)> CheckOptions(IConfiguration configuration, string? baseDirectory = null,
        TimeSpan? callTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var options = new PluginHostOptions();
        configuration.GetSection(PluginHostOptions.Section).Bind(options);
        var candidates = PluginResolver.Discover(options.ResolveDirectories(baseDirectory ?? AppContext.BaseDirectory));
        var resolved = PluginResolver.Resolve(candidates, configuration, SemVersion.Parse(CrmSdk.Version), _ => null);
        var problems = new List<(string, string)>();
        foreach (var candidate in resolved.Where(c => c.State is null && c.Manifest is not null))
        {
            CheckPluginOptions(candidate, configuration, callTimeout ?? options.CallTimeout, problems);
        }

        return problems;
    }

    private static void CheckPluginOptions(PluginCandidate candidate, IConfiguration configuration, TimeSpan timeout,
        List<(string, string)> problems)
    {
        var id = candidate.Id;
        var sectionPath = $"Plugins:{id}";
        PluginLoader? loader = null;
        try
        {
            var (l, entryType) = PluginAssemblyLoader.Load(candidate.Folder, candidate.Manifest!.EntryAssembly, unloadable: true);
            loader = l;
            var section = configuration.GetSection("Plugins").GetSection(id);
            var services = new ServiceCollection();
            services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
            services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
            services.AddSingleton(TimeProvider.System);
            services.AddSingleton<IConfiguration>(section);
            services.AddOptions();
            var builder = new PluginBuilder(id, candidate.Version ?? "", section, services);

            // Plugin code: bounded, and its failures are the plugin's (reported, never thrown).
            var configure = Task.Run(() => ((CrmPlugin)Activator.CreateInstance(entryType)!).ConfigureServices(builder));
            if (!configure.Wait(timeout))
            {
                problems.Add((sectionPath, $"cannot check the options: ConfigureServices did not finish within {timeout}"));
                return;
            }

            using var provider = services.BuildServiceProvider();
            foreach (var check in builder.OptionsChecks)
            {
                try
                {
                    check(provider);
                }
                catch (OptionsValidationException ex)
                {
                    foreach (var failure in ex.Failures)
                    {
                        var member = Regex.Match(failure, "members: '([^',]+)", RegexOptions.None, TimeSpan.FromSeconds(1));
                        var key = member.Success ? $"{sectionPath}:{member.Groups[1].Value}" : sectionPath;
                        var raw = member.Success ? configuration[key] : null;
                        var error = Regex.Match(failure, "with the error: '(.*)'\\.?$", RegexOptions.None, TimeSpan.FromSeconds(1));
                        var text = (error.Success ? error.Groups[1].Value : failure).ReplaceLineEndings(" ");
                        problems.Add((key, raw is null ? text : $"{text} (value '{raw}')"));
                    }
                }
                catch (InvalidOperationException ex)
                {
                    problems.Add((sectionPath, $"cannot be bound: {GuardedCall.Describe(ex)}"));
                }
            }
        }
        catch (PluginLoadException)
        {
            // Reported by crm plugins list; nothing to say about options.
        }
        catch (AggregateException ex)
        {
            problems.Add((sectionPath, $"cannot check the options: ConfigureServices failed: {GuardedCall.Describe(ex.InnerException ?? ex)}"));
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or MissingMethodException
                                       or InvalidCastException or System.Reflection.TargetInvocationException)
        {
            problems.Add((sectionPath, $"cannot check the options: {GuardedCall.Describe(ex)}"));
        }
        finally
        {
            loader?.Dispose();
        }
    }
}
