using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;
using CrmEngine.Core;
using CrmEngine.PluginHost;
using CrmEngine.Scheduling.Calendars;
using CrmEngine.Scheduling.Jobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.CommandLine;
using Microsoft.Extensions.Configuration.EnvironmentVariables;
using Microsoft.Extensions.Configuration.Json;
using NLog;
using NLog.Extensions.Logging;

namespace CrmEngine.Host.Configuration;

/// <summary>How much a configuration problem weighs (see docs/operations.md, "Configuration checks").</summary>
internal enum ConfigSeverity
{
    /// <summary>Stops start-up and fails <c>crm config check</c>.</summary>
    Error,

    /// <summary>An unknown top-level section: a warning at start (the engine ignores it), an error in <c>crm config check</c>.</summary>
    Unknown,

    /// <summary>A warning in both (for example options for a plugin that is not installed).</summary>
    Warning,
}

/// <summary>One problem with one configuration key, printed as one line.</summary>
internal sealed record ConfigProblem(string Key, string Message, ConfigSeverity Severity = ConfigSeverity.Error)
{
    public override string ToString() => $"{Key}: {Message}";
}

/// <summary>
/// Validates every options section the engine binds, naming the exact key of each problem:
/// unknown keys, values that do not convert, and data-annotation rules. The same check runs
/// before the engine starts and in <c>crm config check</c>.
/// </summary>
internal static class ConfigChecker
{
    /// <summary>The sections the engine binds and the options type behind each.</summary>
    public static readonly IReadOnlyList<(string Section, Type Type)> Sections =
    [
        (StoreOptions.Section, typeof(StoreOptions)),
        (PipelineOptions.Section, typeof(PipelineOptions)),
        (PluginHostOptions.Section, typeof(PluginHostOptions)),
        (CrmHostOptions.Section, typeof(CrmHostOptions)),
        (SchedulerOptions.Section, typeof(SchedulerOptions)),
        (CrmEngine.Rules.RulesOptions.Section, typeof(CrmEngine.Rules.RulesOptions)),
        (CrmEngine.Mail.MailOptions.Section, typeof(CrmEngine.Mail.MailOptions)),
        (CrmEngine.DataExchange.DataExchangeOptions.Section, typeof(CrmEngine.DataExchange.DataExchangeOptions)),
        (CrmEngine.Templates.TemplatesOptions.Section, typeof(CrmEngine.Templates.TemplatesOptions)),
        (CrmEngine.Webhooks.WebhookOptions.Section, typeof(CrmEngine.Webhooks.WebhookOptions)),
        (CrmEngine.Api.ApiOptions.Section, typeof(CrmEngine.Api.ApiOptions)),
    ];

    /// <summary>
    /// Top-level sections the engine reads besides <see cref="Sections"/>. <c>ENVIRONMENT</c> is CRM_ENVIRONMENT;
    /// <c>Logging</c> is the generic host's own section.
    /// </summary>
    public static readonly IReadOnlyList<string> OtherSections = ["Calendars", "Plugins", "NLog", "Logging", "ENVIRONMENT"];

    /// <param name="configuration">The whole configuration.</param>
    /// <param name="contentRoot">Base of relative paths (calendar holiday files, logs); null for the current folder.</param>
    /// <param name="pluginBaseDirectory">Base of relative plugin folders; null skips the checks that need the plugins.</param>
    /// <param name="checkPluginOptions">Also validate each plugin's options through the plugin inspector (loads the plugins; crm config check).</param>
    public static IReadOnlyList<ConfigProblem> Check(IConfiguration configuration, string? contentRoot = null,
        string? pluginBaseDirectory = null, bool checkPluginOptions = false)
    {
        var problems = new List<ConfigProblem>();
        foreach (var (section, type) in Sections)
        {
            CheckSection(configuration.GetSection(section), type, problems);
        }

        // Calendars is a dictionary of names (not one options type): each calendar is built to find its problems.
        foreach (var (key, problem) in CalendarFactory.Check(configuration, contentRoot))
        {
            problems.Add(new ConfigProblem(key, problem));
        }

        CheckPlugins(configuration.GetSection("Plugins"), problems);
        CheckNLog(configuration.GetSection("NLog"), contentRoot ?? Environment.CurrentDirectory, problems);
        if (configuration is IConfigurationRoot root)
        {
            CheckUnknownSections(root, problems);
        }

        if (pluginBaseDirectory is not null)
        {
            CheckPluginFolders(configuration, pluginBaseDirectory, problems);
            if (checkPluginOptions)
            {
                foreach (var (key, problem) in PluginInspector.CheckOptions(configuration, pluginBaseDirectory))
                {
                    problems.Add(new ConfigProblem(key, problem));
                }
            }
        }

        return problems;
    }

    /// <summary>
    /// Top-level sections nobody reads, from the settings files, the command line and CRM_ variables. Plain
    /// environment variables are left out: they hold the machine's unrelated settings (PATH, HOME ...).
    /// </summary>
    private static void CheckUnknownSections(IConfigurationRoot root, List<ConfigProblem> problems)
    {
        var known = Sections.Select(s => s.Section).Concat(OtherSections).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var reported = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var provider in root.Providers)
        {
            var origin = provider switch
            {
                JsonConfigurationProvider json => json.Source.Path is { } path
                    ? json.Source.FileProvider?.GetFileInfo(path).PhysicalPath ?? path
                    : "a settings file",
                CommandLineConfigurationProvider => "the command line",
                EnvironmentVariablesConfigurationProvider env when env.ToString().Contains(CrmConfiguration.EnvironmentPrefix, StringComparison.Ordinal)
                    => $"a {CrmConfiguration.EnvironmentPrefix} environment variable",
                _ => null,
            };
            if (origin is null)
            {
                continue;
            }

            foreach (var section in provider.GetChildKeys([], null).Distinct(StringComparer.OrdinalIgnoreCase))
            {
                if (!known.Contains(section) && reported.Add(section))
                {
                    var names = string.Join(", ", Sections.Select(s => s.Section).Concat(OtherSections.Take(3)));
                    problems.Add(new ConfigProblem(section, $"unknown section (from {origin}; known sections: {names})", ConfigSeverity.Unknown));
                }
            }
        }
    }

    /// <summary><c>Plugins:&lt;id&gt;</c> with no plugin folder of that id: a typo or a plugin that is not installed.</summary>
    private static void CheckPluginFolders(IConfiguration configuration, string pluginBaseDirectory, List<ConfigProblem> problems)
    {
        IReadOnlySet<string> ids;
        try
        {
            ids = PluginInspector.DiscoverIds(configuration, pluginBaseDirectory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            problems.Add(new ConfigProblem(PluginHostOptions.Section, $"cannot list the plugin folders: {ex.Message}", ConfigSeverity.Warning));
            return;
        }

        foreach (var plugin in configuration.GetSection("Plugins").GetChildren())
        {
            if (!ids.Contains(plugin.Key))
            {
                var found = ids.Count == 0 ? "none" : string.Join(", ", ids.Order(StringComparer.Ordinal));
                problems.Add(new ConfigProblem(plugin.Path, $"no plugin folder has the id '{plugin.Key}' (plugins found: {found})", ConfigSeverity.Warning));
            }
        }
    }

    private static void CheckSection(IConfigurationSection section, Type type, List<ConfigProblem> problems)
    {
        var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite || IsCollection(p.PropertyType))
            .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
        var unconvertible = false;

        foreach (var child in section.GetChildren())
        {
            if (!properties.TryGetValue(child.Key, out var property))
            {
                var known = string.Join(", ", properties.Keys.Order(StringComparer.Ordinal));
                problems.Add(new ConfigProblem(child.Path, $"unknown key (known keys of {section.Path}: {known})"));
                continue;
            }

            var target = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (child.Value is null)
            {
                if (child.GetChildren().Any() && !IsCollection(target) && IsSimple(target))
                {
                    problems.Add(new ConfigProblem(child.Path, $"expects a single {Describe(target)} value, not a section"));
                    unconvertible = true;
                }

                continue;
            }

            if (IsSimple(target) && !TryConvert(child.Value, target))
            {
                problems.Add(new ConfigProblem(child.Path, $"'{child.Value}' is not a valid {Describe(target)}"));
                unconvertible = true;
            }
        }

        if (unconvertible)
        {
            return;
        }

        object? instance;
        try
        {
            instance = Activator.CreateInstance(type);
            section.Bind(instance);
        }
        catch (InvalidOperationException ex)
        {
            problems.Add(new ConfigProblem(section.Path, ex.Message));
            return;
        }

        if (instance is null)
        {
            return;
        }

        var results = new List<ValidationResult>();
        if (!Validator.TryValidateObject(instance, new ValidationContext(instance), results, validateAllProperties: true))
        {
            foreach (var result in results)
            {
                var members = result.MemberNames.Any() ? result.MemberNames : [""];
                foreach (var member in members)
                {
                    var key = member.Length == 0 ? section.Path : $"{section.Path}:{member}";
                    var raw = member.Length == 0 ? null : section[member];
                    var shown = raw is null ? "" : $" (value '{raw}')";
                    problems.Add(new ConfigProblem(key, (result.ErrorMessage ?? "is not valid") + shown));
                }
            }
        }
    }

    /// <summary><c>Plugins:&lt;id&gt;:Enabled</c> must be true or false; the rest belongs to each plugin.</summary>
    private static void CheckPlugins(IConfigurationSection plugins, List<ConfigProblem> problems)
    {
        foreach (var plugin in plugins.GetChildren())
        {
            var enabled = plugin.GetSection("Enabled");
            if (enabled.Value is { } value && !bool.TryParse(value, out _))
            {
                problems.Add(new ConfigProblem(enabled.Path, $"'{value}' is not a valid boolean (true or false)"));
            }
        }
    }

    private static void CheckNLog(IConfigurationSection section, string contentRoot, List<ConfigProblem> problems)
    {
        var logDirectory = "logs";
        if (section.Exists())
        {
            try
            {
                using var factory = new LogFactory { ThrowConfigExceptions = true, ThrowExceptions = false };
                var config = new NLogLoggingConfiguration(section, factory);
                logDirectory = Hosting.CrmLogging.LogDirectoryOf(config) ?? logDirectory;
            }
            catch (Exception ex) when (ex is NLogConfigurationException or InvalidOperationException or ArgumentException or FormatException or NotSupportedException)
            {
                problems.Add(new ConfigProblem(section.Path, OneLine(ex)));
                return;
            }
        }

        // The log folder must be writable, or the engine would run without its log file and say nothing.
        var directory = Path.GetFullPath(logDirectory, contentRoot);
        try
        {
            Directory.CreateDirectory(directory);
            var probe = Path.Combine(directory, $".crm-write-probe-{Environment.ProcessId}");
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            problems.Add(new ConfigProblem($"NLog:variables:{Hosting.CrmLogging.LogDirectoryVariable}",
                $"the log folder '{directory}' is not writable: {OneLine(ex)}"));
        }
    }

    private static string OneLine(Exception ex)
    {
        var message = ex.Message;
        for (var inner = ex.InnerException; inner is not null; inner = inner.InnerException)
        {
            message += " " + inner.Message;
        }

        return message.ReplaceLineEndings(" ");
    }

    private static bool IsCollection(Type type) =>
        type != typeof(string) && typeof(System.Collections.IEnumerable).IsAssignableFrom(type);

    private static bool IsSimple(Type type) =>
        type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(TimeSpan)
        || type == typeof(DateTimeOffset) || type == typeof(DateTime) || type == typeof(Guid) || type == typeof(Uri);

    private static bool TryConvert(string value, Type type)
    {
        if (type == typeof(string))
        {
            return true;
        }

        if (type.IsEnum)
        {
            return Enum.TryParse(type, value, ignoreCase: true, out _);
        }

        try
        {
            _ = TypeDescriptor.GetConverter(type).ConvertFromInvariantString(value);
            return true;
        }
        catch (Exception ex) when (ex is FormatException or NotSupportedException or ArgumentException or OverflowException
                                       || ex.InnerException is FormatException or OverflowException)
        {
            return false;
        }
    }

    private static string Describe(Type type) => type switch
    {
        _ when type == typeof(bool) => "boolean (true or false)",
        _ when type == typeof(int) || type == typeof(long) => "whole number",
        _ when type == typeof(double) || type == typeof(decimal) => "number",
        _ when type == typeof(TimeSpan) => "duration (hh:mm:ss, for example 00:00:30)",
        _ when type.IsEnum => $"value ({string.Join(", ", Enum.GetNames(type))})",
        _ => type.Name,
    };

    /// <param name="problems">The problems to print, one line each.</param>
    /// <param name="atStart">At start unknown sections are warnings; in crm config check they are errors.</param>
    internal static string Format(IEnumerable<ConfigProblem> problems, bool atStart = false) =>
        string.Join(Environment.NewLine, problems.Select(p => string.Create(CultureInfo.InvariantCulture,
            $"configuration {(IsError(p, atStart) ? "error" : "warning")}: {p}")));

    /// <summary>Whether the problem stops start-up (<paramref name="atStart"/>) or fails crm config check.</summary>
    internal static bool IsError(ConfigProblem problem, bool atStart) =>
        problem.Severity == ConfigSeverity.Error || (problem.Severity == ConfigSeverity.Unknown && !atStart);
}
