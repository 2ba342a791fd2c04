namespace CrmEngine.Host;

/// <summary>Process exit codes of every command (documented in docs/operations.md).</summary>
internal static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>The command was refused or failed (service running, not a backup, permission ...).</summary>
    public const int Refused = 1;

    /// <summary>Bad command line or bad configuration.</summary>
    public const int Usage = 2;

    /// <summary>The engine failed while starting or running.</summary>
    public const int Failed = 3;
}

/// <summary>A command cannot do what was asked: one line for the user, and an exit code.</summary>
internal sealed class CommandRefusedException : Exception
{
    public CommandRefusedException(string message, int exitCode = ExitCodes.Refused) : base(message) => ExitCode = exitCode;

    public CommandRefusedException() : this("refused") { }

    public CommandRefusedException(string message, Exception inner) : base(message, inner) => ExitCode = ExitCodes.Refused;

    public int ExitCode { get; }
}
