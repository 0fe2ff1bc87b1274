using Microsoft.Extensions.Options;

namespace Dtask.Operator.Hosting;

/// <summary>
/// An options factory that hands out options already built from the command line (immutable records), while
/// still running the registered validators, so <c>ValidateOnStart</c> refuses bad ones when the host starts.
/// </summary>
/// <typeparam name="TOptions">The options record.</typeparam>
internal sealed class GivenOptionsFactory<TOptions>(TOptions given, IEnumerable<IValidateOptions<TOptions>> validations)
    : OptionsFactory<TOptions>([], [], validations)
    where TOptions : class
{
    protected override TOptions CreateInstance(string name) => given;
}

/// <summary>Validates options with their own <c>Problems()</c> list.</summary>
/// <typeparam name="TOptions">The options record.</typeparam>
internal sealed class ProblemsValidation<TOptions>(Func<TOptions, IReadOnlyList<string>> problems) : IValidateOptions<TOptions>
    where TOptions : class
{
    public ValidateOptionsResult Validate(string? name, TOptions options) =>
        problems(options) is { Count: > 0 } found ? ValidateOptionsResult.Fail(found) : ValidateOptionsResult.Success;
}
