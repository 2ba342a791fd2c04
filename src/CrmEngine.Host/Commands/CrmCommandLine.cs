using System.CommandLine;
using CrmEngine.Host.Configuration;
using CrmEngine.Host.Hosting;

namespace CrmEngine.Host.Commands;

/// <summary>The verbs of the <c>crm</c> binary (System.CommandLine).</summary>
internal static class CrmCommandLine
{
    public static readonly Option<string?> ContentRoot = new("--content-root")
    {
        Description = "Folder with appsettings.json; relative data and log folders are taken from it. Default: the current folder when it holds appsettings.json, else the binary's folder.",
        Recursive = true,
    };

    public static readonly Option<string?> EnvironmentOption = new("--environment")
    {
        Description = "Environment name (reads appsettings.{Environment}.json). Default: CRM_ENVIRONMENT, DOTNET_ENVIRONMENT, else Production.",
        Recursive = true,
    };

    public static RootCommand Build()
    {
        var root = new RootCommand("CrmEngine: a headless, plugin-based CRM engine. With no command it runs the engine in the foreground. " +
                                   "Configuration overrides: --Section:Key=value.");
        root.Options.Add(ContentRoot);
        root.Options.Add(EnvironmentOption);
        root.TreatUnmatchedTokensAsErrors = false;
        root.SetAction(RunEngine);

        var run = new Command("run", "Runs the engine (foreground, or under systemd / the Windows service manager).")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        run.SetAction(RunEngine);
        root.Subcommands.Add(run);

        root.Subcommands.Add(ServiceCommands.Build());
        root.Subcommands.Add(AdminCommands.Plugins());
        root.Subcommands.Add(AdminCommands.Backup());
        root.Subcommands.Add(AdminCommands.Restore());
        root.Subcommands.Add(AdminCommands.Config());
        root.Subcommands.Add(AdminCommands.Status());
        root.Subcommands.Add(JobsCommands.Jobs());
        root.Subcommands.Add(JobsCommands.Calendars());
        root.Subcommands.Add(RulesCommands.Rules());
        root.Subcommands.Add(RulesCommands.Segments());
        root.Subcommands.Add(EdiCommandLine.Edi());
        root.Subcommands.Add(MailCommands.Mail());
        root.Subcommands.Add(DataCommands.Import()); root.Subcommands.Add(DataCommands.Export()); root.Subcommands.Add(DataCommands.Duplicates()); root.Subcommands.Add(DataCommands.Customers());
        root.Subcommands.Add(TemplatesCommands.Templates());
        root.Subcommands.Add(ApiKeysCommands.ApiKeys());
        foreach (var verb in SecurityCommands.Build()) { root.Subcommands.Add(verb); }
        root.Subcommands.Add(WebhooksCommands.Webhooks());
        return root;
    }

    public static async Task<int> InvokeAsync(string[] args)
    {
        var root = Build();
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            // One line, not the whole help text: what is wrong and where to look.
            var command = string.Join(' ', parse.CommandResult.Command is var c && c != root ? Path(parse.CommandResult) : []);
            var messages = string.Join("; ", parse.Errors.Select(e => e.Message.TrimEnd('.')));
            await Console.Error.WriteLineAsync($"{messages} (see: crm {(command.Length > 0 ? command + " " : "")}--help)");
            return ExitCodes.Usage;
        }

        var config = new InvocationConfiguration
        {
            // The generic host handles Ctrl+C / SIGTERM itself (clean stop within Host:ShutdownTimeout).
            ProcessTerminationTimeout = null,
            EnableDefaultExceptionHandler = false,
        };
        try
        {
            return await parse.InvokeAsync(config);
        }
        catch (CommandRefusedException ex)
        {
            await Console.Error.WriteLineAsync(ex.Message);
            return ex.ExitCode;
        }
    }

    private static List<string> Path(System.CommandLine.Parsing.CommandResult result)
    {
        var names = new List<string>();
        for (System.CommandLine.Parsing.SymbolResult? r = result; r is System.CommandLine.Parsing.CommandResult cr && cr.Parent is not null; r = r.Parent)
        {
            names.Insert(0, cr.Command.Name);
        }

        return names;
    }

    /// <summary>Loads the configuration the command runs with; unknown tokens must be overrides.</summary>
    public static CrmConfiguration LoadConfiguration(ParseResult parse)
    {
        var overrides = parse.UnmatchedTokens;
        if (CrmConfiguration.CheckOverrides(overrides) is { } problem)
        {
            throw new CommandRefusedException(problem, ExitCodes.Usage);
        }

        return CrmConfiguration.Load(parse.GetValue(ContentRoot), parse.GetValue(EnvironmentOption), overrides);
    }

    private static async Task<int> RunEngine(ParseResult parse, CancellationToken cancellationToken)
    {
        var crm = LoadConfiguration(parse);
        // A service process works from its content root (relative paths in plugins, the store ...).
        Directory.SetCurrentDirectory(crm.ContentRoot);
        return await EngineHost.RunAsync(crm);
    }
}
