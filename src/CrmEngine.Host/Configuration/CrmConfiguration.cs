using Microsoft.Extensions.Configuration;

namespace CrmEngine.Host.Configuration;

/// <summary>
/// Where the engine finds its configuration, and the one place that stacks the sources, so the
/// running host and every command (config check, backup, plugins list ...) read the same values.
/// Order (later wins): appsettings.json, appsettings.{Environment}.json, plain environment
/// variables, CRM_-prefixed environment variables, command-line overrides.
/// </summary>
internal sealed class CrmConfiguration
{
    public const string SettingsFile = "appsettings.json";
    public const string EnvironmentPrefix = "CRM_";

    private CrmConfiguration(string contentRoot, string environmentName, IConfigurationRoot root, IReadOnlyList<string> overrides)
    {
        ContentRoot = contentRoot;
        EnvironmentName = environmentName;
        Root = root;
        Overrides = overrides;
    }

    /// <summary>Absolute folder relative paths (data, logs) are taken from.</summary>
    public string ContentRoot { get; }

    public string EnvironmentName { get; }

    public IConfigurationRoot Root { get; }

    /// <summary>Command-line overrides (<c>--Section:Key=value</c>) as given.</summary>
    public IReadOnlyList<string> Overrides { get; }

    public static CrmConfiguration Load(string? contentRootOption, string? environmentOption, IReadOnlyList<string> overrides)
    {
        var contentRoot = ResolveContentRoot(contentRootOption, Environment.CurrentDirectory, AppContext.BaseDirectory);
        var environment = ResolveEnvironment(environmentOption);
        var builder = new ConfigurationBuilder();
        AddSources(builder, contentRoot, environment, overrides);
        IConfigurationRoot root;
        try
        {
            root = builder.Build();
        }
        catch (InvalidDataException ex)
        {
            throw new CommandRefusedException(DescribeLoadFailure(ex, contentRoot), ExitCodes.Usage);
        }

        return new CrmConfiguration(contentRoot, environment, root, overrides);
    }

    /// <summary>
    /// One line for a settings file that cannot be read: <c>configuration error: &lt;file&gt; line N: &lt;what&gt;</c>.
    /// The JSON provider wraps the parser's error (whose line number is zero-based) in an InvalidDataException.
    /// </summary>
    internal static string DescribeLoadFailure(InvalidDataException ex, string contentRoot)
    {
        var file = System.Text.RegularExpressions.Regex.Match(ex.Message, "'([^']+)'") is { Success: true } m
            ? m.Groups[1].Value
            : Path.Combine(contentRoot, SettingsFile);
        var json = FindInner<System.Text.Json.JsonException>(ex);
        if (json is not null)
        {
            // The JSON message ends with "Path: $ | LineNumber: 3 | BytePositionInLine: 5."; keep only the cause.
            var what = json.Message;
            var cut = what.IndexOf(" Path:", StringComparison.Ordinal);
            if (cut < 0)
            {
                cut = what.IndexOf(" LineNumber:", StringComparison.Ordinal);
            }

            what = (cut > 0 ? what[..cut] : what).Trim().TrimEnd('.');
            var line = json.LineNumber is { } n ? $" line {n + 1}" : "";
            return $"configuration error: {file}{line}: {what}".ReplaceLineEndings(" ");
        }

        var inner = ex.InnerException ?? ex;
        return $"configuration error: {file}: {inner.Message.Trim().TrimEnd('.')}".ReplaceLineEndings(" ");
    }

    private static T? FindInner<T>(Exception ex) where T : Exception
    {
        for (Exception? e = ex; e is not null; e = e.InnerException)
        {
            if (e is T found)
            {
                return found;
            }
        }

        return null;
    }

    /// <summary>
    /// <c>--content-root</c> when given; else the current directory when it holds appsettings.json;
    /// else the application's base directory (where the default appsettings.json is copied).
    /// </summary>
    public static string ResolveContentRoot(string? option, string currentDirectory, string baseDirectory)
    {
        if (!string.IsNullOrWhiteSpace(option))
        {
            var full = Path.GetFullPath(option, currentDirectory);
            if (!Directory.Exists(full))
            {
                throw new CommandRefusedException($"--content-root: the folder '{full}' does not exist.", ExitCodes.Usage);
            }

            return full;
        }

        if (File.Exists(Path.Combine(currentDirectory, SettingsFile)))
        {
            return Path.GetFullPath(currentDirectory);
        }

        return Path.GetFullPath(baseDirectory).TrimEnd(Path.DirectorySeparatorChar) is var b && b.Length > 0 ? b : baseDirectory;
    }

    public static string ResolveEnvironment(string? option)
    {
        foreach (var candidate in new[]
                 {
                     option,
                     Environment.GetEnvironmentVariable(EnvironmentPrefix + "ENVIRONMENT"),
                     Environment.GetEnvironmentVariable("DOTNET_ENVIRONMENT"),
                     Environment.GetEnvironmentVariable("ASPNETCORE_ENVIRONMENT"),
                 })
        {
            if (!string.IsNullOrWhiteSpace(candidate))
            {
                return candidate.Trim();
            }
        }

        return "Production";
    }

    public static void AddSources(IConfigurationBuilder builder, string contentRoot, string environment, IReadOnlyList<string> overrides)
    {
        builder.SetBasePath(contentRoot);
        builder.AddJsonFile(SettingsFile, optional: true, reloadOnChange: false);
        builder.AddJsonFile($"appsettings.{environment}.json", optional: true, reloadOnChange: false);
        builder.AddEnvironmentVariables();
        builder.AddEnvironmentVariables(EnvironmentPrefix);
        if (overrides.Count > 0)
        {
            builder.AddCommandLine(overrides.ToArray());
        }
    }

    /// <summary>
    /// Checks the tokens the command line did not recognise: each must be a configuration override
    /// <c>--Section:Key=value</c> or <c>--Section:Key value</c>. Returns the problem, or null.
    /// </summary>
    public static string? CheckOverrides(IReadOnlyList<string> tokens)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            if (token.StartsWith("--", StringComparison.Ordinal) && token.Length > 2 && token.Contains(':', StringComparison.Ordinal))
            {
                if (!token.Contains('=', StringComparison.Ordinal))
                {
                    if (i + 1 >= tokens.Count)
                    {
                        return $"the configuration override '{token}' has no value (write {token}=VALUE).";
                    }

                    i++;
                }

                continue;
            }

            return $"unknown argument '{token}' (configuration overrides look like --Section:Key=value; see --help).";
        }

        return null;
    }
}
